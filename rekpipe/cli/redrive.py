"""``rekpipe redrive``: give failed work another go.

``--dlq`` moves messages from the dead-letter queues back to the queues they came from.
``--failed``/``--partial`` re-queue FAILED/PARTIAL tasks with ``TaskTable.requeue`` (the task
goes back to PENDING and the table stream routes it again), optionally only those with given
error codes or under a key prefix. Both are safe to repeat: the pipeline is idempotent per
object version, and an operation whose output is already recorded is not paid for twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rekpipe.cli.stack import Clients, GlobalOptions, StackOutputs

DEFAULT_MAX_MESSAGES = 1000
DEFAULT_WAIT_SECONDS = 2
SQS_BATCH = 10
_DRY_RUN_SHOWN = 50
_REDRIVE_VISIBILITY_SECONDS = 60
"""Long enough to send and delete one batch; a message not moved in time simply reappears in its DLQ."""


@click.command(short_help="Move DLQ messages back, or re-queue FAILED/PARTIAL tasks.")
@click.option("--dlq", is_flag=True, help="Move messages from every dead-letter queue back to its source queue.")
@click.option("--failed", is_flag=True, help="Re-queue FAILED tasks.")
@click.option("--partial", is_flag=True, help="Re-queue PARTIAL tasks (some operations failed).")
@click.option("--error-code", "error_codes", multiple=True, metavar="CODE",
              help="Only tasks that failed with this error code (repeatable), e.g. ThrottlingException.")
@click.option("--prefix", metavar="PREFIX", default="", help="Only tasks whose object key starts with this.")
@click.option("--max-messages", type=click.IntRange(min=1), default=DEFAULT_MAX_MESSAGES, show_default=True,
              help="At most this many messages per dead-letter queue.")
@click.option("--wait-seconds", type=click.IntRange(0, 20), default=DEFAULT_WAIT_SECONDS, show_default=True,
              help="Long-poll wait before a dead-letter queue is taken as empty.")
@click.option("--dry-run", is_flag=True, help="Only show what would be moved or re-queued.")
@click.pass_obj
def cli(options: GlobalOptions, dlq: bool, failed: bool, partial: bool, error_codes: tuple[str, ...], prefix: str,
        max_messages: int, wait_seconds: int, dry_run: bool) -> None:
    """Give failed work another go: move dead-letter messages back to their queues (--dlq) and/or
    re-queue FAILED (--failed) and PARTIAL (--partial) tasks, optionally only those with given
    error codes (--error-code) or under a key prefix (--prefix).

    \b
    Examples:
      rekpipe redrive --dlq
      rekpipe redrive --failed --error-code ThrottlingException --dry-run
      rekpipe redrive --failed --partial --prefix 2019/
    """
    do_cli(options, dlq=dlq, failed=failed, partial=partial, error_codes=error_codes, prefix=prefix,
           max_messages=max_messages, wait_seconds=wait_seconds, dry_run=dry_run)


@dataclass
class RedriveResult:
    """What was moved (by DLQ name) and re-queued (by status), or would be with ``dry_run``."""

    dry_run: bool
    moved: dict[str, int] = field(default_factory=dict)
    not_moved: dict[str, int] = field(default_factory=dict)
    requeued: dict[str, int] = field(default_factory=dict)
    changed_meanwhile: int = 0


def do_cli(
    options: GlobalOptions,
    *,
    dlq: bool = False,
    failed: bool = False,
    partial: bool = False,
    error_codes: tuple[str, ...] = (),
    prefix: str = "",
    max_messages: int = DEFAULT_MAX_MESSAGES,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
    dry_run: bool = False,
    clients: Clients | None = None,
) -> RedriveResult:
    """Redrive dead-letter messages and/or re-queue failed tasks; print the counts on stdout.

    Parameters
    ----------
    options: GlobalOptions
        The group's options.
    dlq: bool
        Move dead-letter messages back to their source queues.
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

    if not (dlq or failed or partial):
        raise UserException("Say what to redrive: --dlq (dead-letter messages), --failed and/or --partial (tasks)")
    if (error_codes or prefix) and not (failed or partial):
        raise UserException("--error-code and --prefix filter tasks: add --failed and/or --partial")
    clients = clients or Clients(options)
    what = [name for name, on in (("dead-letter queues", dlq), ("FAILED tasks", failed), ("PARTIAL tasks", partial))
            if on]
    filters = ([f"error codes {', '.join(error_codes)}"] if error_codes else []) + (
        [f"keys under {prefix!r}"] if prefix else [])
    note(f"Redrive of {' and '.join(what)}" + (f" ({'; '.join(filters)})" if filters else "")
         + f" in {clients.target.describe()}" + (" - dry run, nothing changes" if dry_run else ""))
    outputs = clients.stack_outputs()
    result = RedriveResult(dry_run=dry_run)
    if dlq:
        _redrive_dlqs(clients, outputs, result, max_messages=max_messages, wait_seconds=wait_seconds)
    statuses = [status for status, on in (("FAILED", failed), ("PARTIAL", partial)) if on]
    if statuses:
        _requeue_tasks(clients, outputs, result, statuses, frozenset(error_codes), prefix)
    return result


# --- dead-letter queues ------------------------------------------------------------------------
def _redrive_dlqs(clients: Clients, outputs: StackOutputs, result: RedriveResult, *, max_messages: int,
                  wait_seconds: int) -> None:
    from rekpipe.cli.console import note

    if not outputs.dlq_urls:
        note(f"Stack {outputs.stack_name} has no *DlqUrl outputs: no dead-letter queue to redrive")
        return
    sqs = clients.client("sqs")
    for name, dlq_url in outputs.dlq_urls.items():
        label = f"{name}Dlq"
        source_url = _source_queue(sqs, outputs, name, dlq_url)
        if source_url is None:
            note(f"{label}: no source queue found (no queue names it in its redrive policy, and the stack has no "
                 f"{name}QueueUrl output); inspect it with `aws sqs receive-message --queue-url {dlq_url}`")
            continue
        if result.dry_run:
            attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
            result.moved[label] = min(int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0)),
                                      max_messages)
            continue
        moved, not_moved = _move_messages(sqs, label, dlq_url, source_url, max_messages=max_messages,
                                          wait_seconds=wait_seconds)
        result.moved[label] = moved
        if not_moved:
            result.not_moved[label] = not_moved
    verb = "would move (approximately)" if result.dry_run else "moved"
    for label, count in result.moved.items():
        extra = f", {result.not_moved[label]:,} not moved (they stay in the DLQ)" if result.not_moved.get(label) else ""
        click.echo(f"{label}: {verb} {count:,} messages back to their queue{extra}")


def _source_queue(sqs: Any, outputs: StackOutputs, name: str, dlq_url: str) -> str | None:
    """The queue whose redrive policy targets this DLQ; else the stack's ``<Name>QueueUrl`` output."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) == 1:
        return str(sources[0])
    by_name = outputs.raw.get(f"{name}QueueUrl")
    if by_name and (not sources or by_name in sources):
        return by_name
    return None


def _move_messages(sqs: Any, label: str, dlq_url: str, source_url: str, *, max_messages: int,
                   wait_seconds: int) -> tuple[int, int]:
    """Receive, send, delete in batches of 10 until the DLQ is empty or ``max_messages`` were moved.

    A message is deleted from the DLQ only after its send succeeded, so a crash in between
    duplicates a message (harmless: the pipeline is idempotent) but never loses one.
    """
    from rekpipe.cli.console import Progress

    fifo = source_url.endswith(".fifo")
    moved = not_moved = 0
    with Progress() as progress:
        while moved + not_moved < max_messages:
            received = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH, max_messages - moved - not_moved),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=_REDRIVE_VISIBILITY_SECONDS,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"],
            ).get("Messages", [])
            if not received:
                break
            entries = [_send_entry(str(index), message, fifo=fifo) for index, message in enumerate(received)]
            sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
            sent_ids = {entry["Id"] for entry in sent.get("Successful", [])}
            not_moved += len(received) - len(sent_ids)
            if sent_ids:
                sqs.delete_message_batch(QueueUrl=dlq_url, Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(received) if str(index) in sent_ids
                ])
            moved += len(sent_ids)
            progress.update(f"{label}: moved {moved:,} messages")
    return moved, not_moved


def _send_entry(entry_id: str, message: dict[str, Any], *, fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: {key: value for key, value in attribute.items() if key in ("DataType", "StringValue", "BinaryValue")}
        for name, attribute in (message.get("MessageAttributes") or {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    if fifo:
        system = message.get("Attributes") or {}
        entry["MessageGroupId"] = system.get("MessageGroupId", "redrive")
        if system.get("MessageDeduplicationId"):
            entry["MessageDeduplicationId"] = system["MessageDeduplicationId"]
    return entry


# --- tasks -------------------------------------------------------------------------------------
def _requeue_tasks(clients: Clients, outputs: StackOutputs, result: RedriveResult, statuses: list[str],
                   error_codes: frozenset[str], prefix: str) -> None:
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
            for task in _matching(table.iter_needing_attention(status), error_codes, prefix, started_at):
                if result.dry_run:
                    if len(shown) < _DRY_RUN_SHOWN:
                        shown.append((status, f"s3://{task.get('bucket')}/{task.get('object_key')}",
                                      str(task.get("error_code") or "")))
                    count += 1
                elif table.requeue(task["task_id"], from_status=status) is not None:
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
