"""``rekpipe redrive --stuck``: put tasks left in flight back on their way, never doubling a live one.

The task table's sparse ``in_flight`` index lists PENDING, QUEUED and IN_PROGRESS tasks oldest
first; :mod:`rekpipe_shared.stuck` judges each (lease, execution) and recovers it. A dry run lists
the verdicts and changes nothing. Repeating a run is safe: a task routed or reset by the first is
no longer old, and a duplicate queue message is a no-op for the consumer.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rekpipe.cli.stack import Clients, StackOutputs

SHOWN = 50
"""Rows of the verdict table; the counts cover every task."""


def stuck_bounds(outputs: StackOutputs) -> dict[str, float]:
    """Seconds after which each non-terminal status counts as stuck: the stack's own bounds (its
    ``StuckTaskBounds`` output, which the alarms use), else the settings' defaults."""
    from rekpipe_shared.settings import PipelineSettings

    bounds: dict[str, float] = {k: float(v) for k, v in PipelineSettings().stuck_after_seconds.items()}
    raw = outputs.raw.get("StuckTaskBounds")
    if raw:
        with contextlib.suppress(ValueError, AttributeError):  # a malformed output leaves the defaults
            bounds.update({str(k): float(v) for k, v in json.loads(raw).items()})
    return bounds


def redrive_stuck(clients: Clients, outputs: StackOutputs, *, statuses: tuple[str, ...],
                  older_than: float | None, dry_run: bool, label: str = "") -> dict[str, dict[str, int]]:
    """Judge and recover the stuck tasks of the given statuses; print verdicts and counts.

    Parameters
    ----------
    statuses: tuple[str, ...]
        Non-terminal statuses to look at.
    older_than: float | None
        Seconds without an update before a task is looked at; None uses each status's bound.
    dry_run: bool
        List only.
    label: str
        Prefix of the printed counts (the DLQ on whose behalf this runs, if any).

    Returns
    -------
    dict[str, dict[str, int]]
        Status -> outcome -> tasks.
    """
    from rekpipe.cli.console import Progress, plural, print_table
    from rekpipe.cli.durations import describe_duration
    from rekpipe_shared.schema import MEDIA_IMAGE, MEDIA_VIDEO
    from rekpipe_shared.stuck import StuckTaskInspector, StuckTaskRecovery
    from rekpipe_shared.tasks import TaskTable

    table = TaskTable(outputs.require("TaskTableName"), boto3_client=clients.client("dynamodb"))
    from rekpipe_shared.result_index import ResultIndex

    index = (ResultIndex(outputs.raw["ResultIndexTableName"], boto3_client=clients.client("dynamodb"))
             if outputs.raw.get("ResultIndexTableName") else None)
    inspector = StuckTaskInspector(table, sfn_client=clients.client("stepfunctions"),
                                   state_machine_arn=outputs.video_state_machine_arn, index=index)
    recovery = None
    if not dry_run:
        queues = {MEDIA_IMAGE: outputs.require("ImageQueueUrl"), MEDIA_VIDEO: outputs.require("VideoQueueUrl")}
        recovery = StuckTaskRecovery(table, sqs_client=clients.client("sqs"), queues=queues, index=index)
    bounds = stuck_bounds(outputs)
    shown: list[tuple[str, str, str, str, str]] = []
    results: dict[str, dict[str, int]] = {}
    with Progress() as progress:
        for status in statuses:
            threshold = bounds[status] if older_than is None else older_than
            counts: dict[str, int] = {}
            for verdict in inspector.candidates(status, older_than_seconds=threshold):
                if not verdict.stuck:
                    outcome = "left alone"
                elif dry_run:
                    outcome = f"would {verdict.action}"
                else:
                    assert recovery is not None
                    try:
                        outcome = recovery.recover(verdict)
                    except Exception as error:  # one bad task must not stop the rest; it stays as it was
                        outcome = f"failed ({type(error).__name__}: {error}); left as it was"
                counts[outcome] = counts.get(outcome, 0) + 1
                if len(shown) < SHOWN:
                    shown.append((status, str(verdict.task.get("updated_at", "")), verdict.uri, verdict.reason,
                                  outcome))
                progress.update(f"{status}: {sum(counts.values()):,} tasks examined")
            results[status] = counts
            note_older = describe_duration(threshold)
            if not counts:
                click.echo(f"{label}{status}: no task older than {note_older}")
            for outcome, count in sorted(counts.items()):
                click.echo(f"{label}{status}: {plural(count, 'task')} older than {note_older} {outcome}")
    if shown:
        total = sum(sum(c.values()) for c in results.values())
        title = ("Stuck-task verdicts" + (" (dry run)" if dry_run else "")
                 + (f" (first {len(shown)} of {total})" if total > len(shown) else ""))
        print_table(title, ("Status", "Updated", "Object", "Why", "Outcome"), shown)
    return results


def task_count_older_than(clients: Clients, outputs: StackOutputs, *, older_than: float | None) -> dict[str, Any]:
    """Non-terminal status -> ``{"older_than_seconds", "tasks"}`` from the in-flight index (status)."""
    from rekpipe_shared.schema import IN_FLIGHT_STATUSES
    from rekpipe_shared.stuck import iso_before
    from rekpipe_shared.tasks import TaskTable

    table = TaskTable(outputs.require("TaskTableName"), boto3_client=clients.client("dynamodb"))
    bounds = stuck_bounds(outputs)
    found: dict[str, Any] = {}
    for status in IN_FLIGHT_STATUSES:
        threshold = bounds[status] if older_than is None else older_than
        found[status] = {"older_than_seconds": threshold,
                         "tasks": table.count_in_flight(status, updated_before=iso_before(threshold))}
    return found
