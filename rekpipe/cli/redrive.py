"""``rekpipe redrive``: give failed and stuck work another go.

``--dlq`` redrives every dead-letter queue of the stack, each in its own way
(:mod:`rekpipe.cli.dead_letters`). ``--stuck`` re-routes tasks left PENDING, QUEUED or
IN_PROGRESS with no live owner (:mod:`rekpipe.cli.redrive_stuck`). ``--failed``/``--partial``
re-queue FAILED/PARTIAL tasks with ``TaskTable.requeue`` (the task goes back to PENDING and the
table stream routes it again), optionally only those with given error codes or under a key
prefix. All are safe to repeat: the pipeline is idempotent per object version, and an operation
whose output is already recorded is not paid for twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from rekpipe.cli.durations import DURATION

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rekpipe.cli.stack import Clients, GlobalOptions, StackOutputs

DEFAULT_MAX_MESSAGES = 1000
DEFAULT_WAIT_SECONDS = 2
_DRY_RUN_SHOWN = 50
IN_FLIGHT = ("PENDING", "QUEUED", "IN_PROGRESS")


@click.command(short_help="Redrive DLQs, re-route stuck tasks, or re-queue FAILED/PARTIAL tasks.")
@click.option("--dlq", is_flag=True, help="Redrive every dead-letter queue, each in its own way (S3 notices are "
              "re-ingested, stream failures re-routed, clean-up events re-run, work messages moved back).")
@click.option("--stuck", is_flag=True, help="Re-route tasks left PENDING, QUEUED or IN_PROGRESS with no live owner.")
@click.option("--older-than", type=DURATION, default=None, metavar="DURATION",
              help="With --stuck: only tasks not updated for this long (e.g. 30m, 2h); default: each status's "
                   "stuck bound (the alarms').")
@click.option("--status", "stuck_statuses", multiple=True, type=click.Choice(IN_FLIGHT),
              help="With --stuck: only tasks in this status (repeatable); default: all three.")
@click.option("--failed", is_flag=True, help="Re-queue FAILED tasks.")
@click.option("--partial", is_flag=True, help="Re-queue PARTIAL tasks (some operations failed).")
@click.option("--error-code", "error_codes", multiple=True, metavar="CODE",
              help="Only tasks that failed with this error code (repeatable), e.g. ThrottlingException.")
@click.option("--prefix", metavar="PREFIX", default="", help="Only tasks whose object key starts with this.")
@click.option("--max-messages", type=click.IntRange(min=1), default=DEFAULT_MAX_MESSAGES, show_default=True,
              help="At most this many messages per dead-letter queue.")
@click.option("--wait-seconds", type=click.IntRange(0, 20), default=DEFAULT_WAIT_SECONDS, show_default=True,
              help="Long-poll wait before a dead-letter queue is taken as empty.")
@click.option("--succeeded", is_flag=True, help="With --force: re-queue SUCCEEDED tasks too (a table scan; narrow it "
              "with --prefix), e.g. after a Rekognition model upgrade.")
@click.option("--force", is_flag=True, help="Analyse the re-queued tasks again even when an identical object's "
              "result exists (no reuse); the new result replaces the indexed one.")
@click.option("--dry-run", is_flag=True, help="Only list what would be redriven, re-routed or re-queued; change nothing.")
@click.pass_obj
def cli(options: GlobalOptions, dlq: bool, stuck: bool, older_than: float | None, stuck_statuses: tuple[str, ...],
        failed: bool, partial: bool, error_codes: tuple[str, ...], prefix: str, max_messages: int,
        wait_seconds: int, succeeded: bool, force: bool, dry_run: bool) -> None:
    """Give failed and stuck work another go: redrive the dead-letter queues (--dlq), re-route tasks
    left in flight with no live owner (--stuck), and/or re-queue FAILED (--failed) and PARTIAL
    (--partial) tasks, optionally only those with given error codes (--error-code) or under a key
    prefix (--prefix).

    \b
    Examples:
      rekpipe redrive --dlq
      rekpipe redrive --stuck --dry-run
      rekpipe redrive --stuck --status PENDING --older-than 30m
      rekpipe redrive --failed --error-code ThrottlingException --dry-run
      rekpipe redrive --failed --partial --prefix 2019/
      rekpipe redrive --succeeded --force --prefix 2019/
    """
    do_cli(options, dlq=dlq, stuck=stuck, older_than=older_than, stuck_statuses=stuck_statuses, failed=failed,
           partial=partial, error_codes=error_codes, prefix=prefix, max_messages=max_messages,
           wait_seconds=wait_seconds, succeeded=succeeded, force=force, dry_run=dry_run)


@dataclass
class RedriveResult:
    """What was redriven (by DLQ name), re-routed (by status and outcome) and re-queued (by status),
    or would be with ``dry_run``."""

    dry_run: bool
    moved: dict[str, int] = field(default_factory=dict)
    """DLQ -> messages handled (moved back, re-ingested, re-run, routed) and deleted."""
    not_moved: dict[str, int] = field(default_factory=dict)
    """DLQ -> messages left in it, each with a printed reason."""
    left_reasons: list[tuple[str, str, str]] = field(default_factory=list)
    stuck: dict[str, dict[str, int]] = field(default_factory=dict)
    requeued: dict[str, int] = field(default_factory=dict)
    changed_meanwhile: int = 0


def do_cli(
    options: GlobalOptions,
    *,
    dlq: bool = False,
    stuck: bool = False,
    older_than: float | None = None,
    stuck_statuses: tuple[str, ...] = (),
    failed: bool = False,
    partial: bool = False,
    error_codes: tuple[str, ...] = (),
    prefix: str = "",
    max_messages: int = DEFAULT_MAX_MESSAGES,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
    succeeded: bool = False,
    force: bool = False,
    dry_run: bool = False,
    clients: Clients | None = None,
) -> RedriveResult:
    """Redrive dead-letter messages and/or re-queue failed tasks; print the counts on stdout.

    Parameters
    ----------
    options: GlobalOptions
        The group's options.
    dlq: bool
        Redrive every dead-letter queue, each in its own way.
    stuck: bool
        Re-route tasks left in flight with no live owner.
    older_than: float | None
        With ``stuck``: seconds without an update before a task is looked at (None: each status's bound).
    stuck_statuses: tuple[str, ...]
        With ``stuck``: only these statuses (empty: PENDING, QUEUED and IN_PROGRESS).
    failed, partial: bool
        Re-queue FAILED and/or PARTIAL tasks.
    error_codes: tuple[str, ...]
        Only tasks with one of these error codes (the task's or any of its operations').
    prefix: str
        Only tasks whose object key starts with this.
    max_messages: int
        Messages moved at most per dead-letter queue.
    wait_seconds: int
        Long-poll wait of each receive.
    succeeded: bool
        With ``force``: re-queue SUCCEEDED tasks too (found by a scan of the task table).
    force: bool
        Re-analyse the re-queued tasks even when an identical object's result exists.
    dry_run: bool
        Count (and list) only.
    clients: Clients | None
        Injected client factory (tests).

    Returns
    -------
    RedriveResult
    """
    from rekpipe.cli.console import note
    from rekpipe.cli.exceptions import UserException
    from rekpipe.cli.stack import Clients

    if not (dlq or stuck or failed or partial or succeeded):
        raise UserException("Say what to redrive: --dlq (dead-letter messages), --stuck (tasks left in flight), "
                            "--failed and/or --partial (tasks)")
    if succeeded and not force:
        raise UserException("--succeeded re-analyses finished tasks and pays again: add --force to mean it")
    if force and not (failed or partial or succeeded):
        raise UserException("--force applies to re-queued tasks: add --failed, --partial and/or --succeeded")
    if (error_codes or prefix) and not (failed or partial or succeeded):
        raise UserException("--error-code and --prefix filter tasks: add --failed and/or --partial")
    if (older_than is not None or stuck_statuses) and not stuck:
        raise UserException("--older-than and --status choose stuck tasks: add --stuck")
    if older_than is not None and older_than < 0:
        raise UserException("--older-than must not be negative")
    clients = clients or Clients(options)
    what = [name for name, on in (("dead-letter queues", dlq), ("stuck tasks", stuck), ("FAILED tasks", failed),
                                  ("PARTIAL tasks", partial), ("SUCCEEDED tasks", succeeded)) if on]
    filters = ([f"error codes {', '.join(error_codes)}"] if error_codes else []) + (
        [f"keys under {prefix!r}"] if prefix else []) + (["forced: no reuse of identical results"] if force else [])
    note(f"Redrive of {' and '.join(what)}" + (f" ({'; '.join(filters)})" if filters else "")
         + f" in {clients.target.describe()}" + (" - dry run, nothing changes" if dry_run else ""))
    outputs = clients.stack_outputs()
    result = RedriveResult(dry_run=dry_run)
    if dlq:
        from rekpipe.cli.dead_letters import redrive_dead_letters

        dead = redrive_dead_letters(clients, outputs, max_messages=max_messages, wait_seconds=wait_seconds,
                                    dry_run=dry_run)
        result.moved, result.not_moved, result.left_reasons = dead.handled, dead.left, dead.reasons
    if stuck:
        from rekpipe.cli.redrive_stuck import redrive_stuck

        result.stuck = redrive_stuck(clients, outputs, statuses=stuck_statuses or IN_FLIGHT, older_than=older_than,
                                     dry_run=dry_run)
    statuses = [status for status, on in (("FAILED", failed), ("PARTIAL", partial), ("SUCCEEDED", succeeded)) if on]
    if statuses:
        _requeue_tasks(clients, outputs, result, statuses, frozenset(error_codes), prefix, force=force)
    return result


# --- tasks -------------------------------------------------------------------------------------
def _requeue_tasks(clients: Clients, outputs: StackOutputs, result: RedriveResult, statuses: list[str],
                   error_codes: frozenset[str], prefix: str, *, force: bool = False) -> None:
    from rekpipe.cli.console import Progress, plural, print_table
    from rekpipe_shared.tasks import TaskTable, now_iso

    table = TaskTable(outputs.require("TaskTableName"), boto3_client=clients.client("dynamodb"))
    # A task re-queued by this run that fails again gets a newer updated_at and re-enters the index
    # ahead of the cursor; skipping what changed after the start keeps one run from re-queuing it twice.
    started_at = now_iso()
    shown: list[tuple[str, str, str]] = []
    with Progress() as progress:
        for status in statuses:
            count = 0
            listed = _succeeded(table) if status == "SUCCEEDED" else table.iter_needing_attention(status)
            for task in _matching(listed, error_codes, prefix, started_at):
                if result.dry_run:
                    if len(shown) < _DRY_RUN_SHOWN:
                        shown.append((status, f"s3://{task.get('bucket')}/{task.get('object_key')}",
                                      str(task.get("error_code") or "")))
                    count += 1
                elif table.requeue(task["task_id"], from_status=status, force=force) is not None:
                    count += 1
                else:  # finished or re-queued by someone else since it was listed
                    result.changed_meanwhile += 1
                progress.update(f"{status}: {count:,} tasks {'match' if result.dry_run else 're-queued'}")
            result.requeued[status] = count
    if result.dry_run and shown:
        total = sum(result.requeued.values())
        title = f"Would re-queue {plural(total, 'task')}" + (f" (first {len(shown)} shown)" if total > len(shown)
                                                              else "")
        print_table(title, ("Status", "Object", "Error"), shown)
    for status, count in result.requeued.items():
        verb = "would re-queue" if result.dry_run else "re-queued"
        click.echo(f"{status}: {verb} {plural(count, 'task')}")
    if result.changed_meanwhile:
        click.echo(f"{plural(result.changed_meanwhile, 'task')} changed while listed and were left alone")


def _succeeded(table: Any) -> Iterator[dict[str, Any]]:
    """SUCCEEDED tasks, by a scan: no index lists them (millions succeed), and a forced re-analysis is rare."""
    from rekpipe_shared.tasks import from_stream_image, is_counter_id

    paginator = table.client.get_paginator("scan")
    for page in paginator.paginate(TableName=table.table_name, FilterExpression="#s = :s",
                                   ExpressionAttributeNames={"#s": "status"},
                                   ExpressionAttributeValues={":s": {"S": "SUCCEEDED"}}):
        for item in page.get("Items", []):
            task = from_stream_image(item)
            if not is_counter_id(str(task.get("task_id", "#"))):
                yield task


def _matching(tasks: Iterator[dict[str, Any]], error_codes: frozenset[str], prefix: str,
              started_at: str) -> Iterator[dict[str, Any]]:
    for task in tasks:
        if str(task.get("updated_at", "")) >= started_at:
            continue
        if prefix and not str(task.get("object_key", "")).startswith(prefix):
            continue
        if error_codes:
            codes = {str(task.get("error_code") or "")}
            codes.update(str(e.get("code") or e.get("error_code") or "")
                         for e in (task.get("operation_errors") or {}).values() if isinstance(e, dict))
            if not codes & error_codes:
                continue
        yield task
