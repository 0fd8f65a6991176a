"""``rekpipe status``: where the pipeline stands, from cheap reads only.

Task counts come from the task table's status counters (16 reads, never a scan), failures
from its sparse ``attention`` index, tasks in flight longer than expected from its sparse
``in_flight`` index, queue depths from SQS attributes, video slots from the
slot header, running executions from Step Functions (counted up to a cap), the objects
served from the result index with the Rekognition price they did not pay (its 8 counter items), and the
Rekognition quotas the pipeline runs at, with where each came from (``rekpipe_shared.quotas``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import click

from rekpipe.cli.durations import DURATION

if TYPE_CHECKING:
    from rekpipe.cli.stack import Clients, GlobalOptions, StackOutputs

DEFAULT_FAILURES = 10
EXECUTION_COUNT_CAP = 10_000
"""Counting RUNNING executions pages through them; past this many the exact number adds nothing."""
_MESSAGE_WIDTH = 120


@click.command(short_help="Show tasks, queues, video slots, executions and latest failures.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")
@click.option("--failures", type=click.IntRange(0, 1000), default=DEFAULT_FAILURES, show_default=True,
              help="How many of the latest FAILED/PARTIAL tasks to show.")
@click.option("--older-than", type=DURATION, default=None, metavar="DURATION",
              help="Count PENDING/QUEUED/IN_PROGRESS tasks not updated for this long (e.g. 30m); default: each "
                   "status's stuck bound (the alarms').")
@click.pass_obj
def cli(options: GlobalOptions, as_json: bool, failures: int, older_than: float | None) -> None:
    """Show where the pipeline stands: tasks by status, tasks in flight for longer than expected,
    queue and DLQ depths, video slots in use and waiting, running video executions, and the latest
    failures with their reasons.
    """
    do_cli(options, as_json=as_json, failures=failures, older_than=older_than)


@dataclass(frozen=True)
class QueueDepth:
    name: str
    url: str
    visible: int
    in_flight: int
    is_dlq: bool


@dataclass(frozen=True)
class Failure:
    task_id: str
    status: str
    uri: str
    error_code: str
    error_message: str
    updated_at: str


@dataclass
class PipelineStatus:
    """Everything ``rekpipe status`` shows; ``asdict`` of it is the ``--json`` output."""

    stack_name: str
    region: str
    tasks: dict[str, int] | None = None
    in_flight_too_long: dict[str, Any] | None = None
    """Non-terminal status -> ``{"older_than_seconds", "tasks"}``."""
    queues: list[QueueDepth] = field(default_factory=list)
    slots: dict[str, int] | None = None
    """The slot dispatcher's header: the one stored limit, holders (running jobs), waiters (``rekpipe slots``),
    and ``backlog``: QUEUED videos waiting for admission."""
    executions: dict[str, Any] | None = None
    failures: list[Failure] = field(default_factory=list)
    quotas: list[dict[str, Any]] = field(default_factory=list)
    """Each Rekognition quota in use: name, value, quota, source, cap, quota_code."""
    reuse: dict[str, float] | None = None
    """``reused_objects``, ``reused_operations`` and ``saved_usd`` (list price) from the result index."""


def do_cli(options: GlobalOptions, *, as_json: bool = False, failures: int = DEFAULT_FAILURES,
           older_than: float | None = None, clients: Clients | None = None) -> PipelineStatus:
    """Read the pipeline's state and print it as tables (or JSON) on stdout.

    Parameters
    ----------
    options: GlobalOptions
        The group's options.
    as_json: bool
        Print JSON instead of tables.
    failures: int
        How many of the newest FAILED/PARTIAL tasks to list.
    older_than: float | None
        Seconds without an update after which an in-flight task is counted (None: each status's bound).
    clients: Clients | None
        Injected client factory (tests).

    Returns
    -------
    PipelineStatus
    """
    from rekpipe.cli.console import note
    from rekpipe.cli.stack import Clients

    clients = clients or Clients(options)
    note(f"Status of {clients.target.describe()}")
    outputs = clients.stack_outputs()
    result = PipelineStatus(stack_name=outputs.stack_name, region=clients.target.region)
    table = None
    if outputs.task_table_name:
        from rekpipe_shared.tasks import TaskTable

        table = TaskTable(outputs.task_table_name, boto3_client=clients.client("dynamodb"))
        result.tasks = table.counts()
        result.failures = _latest_failures(table, failures)
        from rekpipe.cli.redrive_stuck import task_count_older_than

        result.in_flight_too_long = task_count_older_than(clients, outputs, older_than=older_than)
    result.queues = _queue_depths(clients, outputs)
    if outputs.raw.get("ResultIndexTableName"):
        from rekpipe_shared.result_index import ResultIndex

        result.reuse = ResultIndex(outputs.raw["ResultIndexTableName"],
                                   boto3_client=clients.client("dynamodb")).stats()
    if outputs.semaphore_table_name:
        from rekpipe.cli.slots import read_slots

        result.slots = dict(read_slots(clients, outputs.semaphore_table_name))
        if table is not None:
            from rekpipe_shared.tasks import VIDEO_BACKLOG

            result.slots["backlog"] = table.count_in_flight(VIDEO_BACKLOG)
    if outputs.video_state_machine_arn:
        result.executions = _running_executions(clients, outputs.video_state_machine_arn)
    result.quotas = _quotas(clients, outputs)
    if as_json:
        import json

        click.echo(json.dumps(asdict(result), indent=2, sort_keys=False))
    else:
        _print_tables(result)
    return result


def _latest_failures(table: Any, limit: int) -> list[Failure]:
    """The newest FAILED and PARTIAL tasks, merged newest first."""
    from rekpipe_shared.schema import STATUS_FAILED, STATUS_PARTIAL

    if limit == 0:
        return []
    items = [*table.needing_attention(STATUS_FAILED, limit=limit), *table.needing_attention(STATUS_PARTIAL,
                                                                                              limit=limit)]
    items.sort(key=lambda item: str(item.get("updated_at", "")), reverse=True)
    return [_failure(item) for item in items[:limit]]


def _failure(item: dict[str, Any]) -> Failure:
    code, message = item.get("error_code"), item.get("error_message")
    operation_errors = item.get("operation_errors") or {}
    if not code and operation_errors:  # PARTIAL: one error per failed operation
        code = ", ".join(sorted({str(e.get("error_code") or e.get("code") or "?") for e in operation_errors.values()}))
        message = "; ".join(f"{op}: {e.get('error_message') or e.get('message') or ''}".strip()
                            for op, e in sorted(operation_errors.items()))
    uri = f"s3://{item.get('bucket', '?')}/{item.get('object_key', '?')}"
    if item.get("version_id"):
        uri += f"?versionId={item['version_id']}"
    return Failure(task_id=str(item.get("task_id", "")), status=str(item.get("status", "")), uri=uri,
                   error_code=str(code or ""), error_message=str(message or ""),
                   updated_at=str(item.get("updated_at", "")))


def _deployed_settings(clients: Clients, outputs: StackOutputs) -> Any:
    """The settings the stack's functions run with (from ingest_batch's environment); defaults if unreadable."""
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    from rekpipe_shared.schema import PIPELINE_SETTINGS_ENV
    from rekpipe_shared.settings import PipelineSettings

    if outputs.ingest_batch_function_arn:
        try:
            configuration = clients.client("lambda").get_function_configuration(
                FunctionName=outputs.ingest_batch_function_arn)
            raw = configuration.get("Environment", {}).get("Variables", {}).get(PIPELINE_SETTINGS_ENV)
            if raw:
                return PipelineSettings.from_mapping(json.loads(raw))
        except (ClientError, BotoCoreError):
            pass
    return PipelineSettings()


def _quotas(clients: Clients, outputs: StackOutputs) -> list[dict[str, Any]]:
    """The Rekognition quotas the deployed pipeline runs at, read as its functions read them."""
    from rekpipe_shared.operations import operation
    from rekpipe_shared.quotas import VIDEO_JOBS, pipeline_quotas

    settings = _deployed_settings(clients, outputs)
    names: list[str] = []
    for name in settings.all_image_operations:
        names.append(operation(name).image_api or "")
    for name in settings.video_operations:
        op = operation(name)
        names.extend((op.video_start_api or "", op.video_get_api or ""))
    names.append(VIDEO_JOBS)
    quotas = pipeline_quotas(settings, [n for n in names if n], boto3_client=clients.client("service-quotas"))
    return [quota.to_dict() for quota in quotas.all().values()]


def _queue_depths(clients: Clients, outputs: StackOutputs) -> list[QueueDepth]:
    sqs = clients.client("sqs")
    depths = []
    for name, url in outputs.queue_urls.items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths.append(QueueDepth(name=name, url=url, visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
                                 in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                                 is_dlq=name.endswith("Dlq")))
    return depths


def _running_executions(clients: Clients, state_machine_arn: str) -> dict[str, Any]:
    paginator = clients.client("stepfunctions").get_paginator("list_executions")
    count, capped = 0, False
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING",
                                   PaginationConfig={"PageSize": 1000}):
        count += len(page.get("executions", []))
        if count >= EXECUTION_COUNT_CAP:
            count, capped = EXECUTION_COUNT_CAP, True
            break
    return {"state_machine_arn": state_machine_arn, "running": count, "capped": capped}


def _print_tables(result: PipelineStatus) -> None:
    from rekpipe.cli.console import print_table
    from rekpipe_shared.schema import ALL_STATUSES

    if result.tasks is not None:
        total = sum(result.tasks.values())
        rows = [(status, f"{result.tasks.get(status, 0):,}") for status in ALL_STATUSES]
        rows.append(("Total", f"{total:,}"))
        print_table("Tasks", ("Status", "Tasks"), rows, right=("Tasks",))
    if result.in_flight_too_long is not None:
        from rekpipe.cli.durations import describe_duration

        print_table("In flight longer than expected", ("Not updated for", "Tasks"),
                    [(f"{status} > {describe_duration(v['older_than_seconds'])}", f"{v['tasks']:,}")
                     for status, v in result.in_flight_too_long.items()], right=("Tasks",))
    if result.queues:
        print_table("Queues", ("Queue", "Waiting", "In flight"),
                    [(q.name, f"{q.visible:,}", f"{q.in_flight:,}") for q in result.queues],
                    right=("Waiting", "In flight"))
    if result.reuse is not None:
        print_table("Results reused from identical content", ("What", "So far"),
                    [("Objects reused", f"{int(result.reuse['reused_objects']):,}"),
                     ("Operations reused", f"{int(result.reuse['reused_operations']):,}"),
                     ("Rekognition saved (list price)", f"${result.reuse['saved_usd']:,.2f}")], right=("So far",))
    video_rows = []
    if result.slots is not None:
        slots = result.slots
        video_rows.append(("Slots in use (running jobs)", f"{slots['holders']} / {slots['limit']}"))
        video_rows.append(("Slot limit (stored, `rekpipe slots --limit N`)", str(slots["limit"])))
        video_rows.append(("Admitted, waiting for a slot", f"{slots['waiters']:,}"))
        if "backlog" in slots:
            video_rows.append(("Backlog (QUEUED, not yet admitted)", f"{slots['backlog']:,}"))
    if result.executions is not None:
        running = result.executions["running"]
        video_rows.append(("Running executions", f"{running:,}+" if result.executions["capped"] else f"{running:,}"))
    if video_rows:
        print_table("Videos", ("What", "Now"), video_rows, right=("Now",))
    if result.quotas:
        print_table("Rekognition quotas in use", ("Quota", "In use", "Account quota", "Cap", "Source"),
                    [(q["name"], f"{q['value']:g}", f"{q['quota']:g}", f"{q['cap']:g}" if q["cap"] else "-",
                      q["source"] + (f" ({q['quota_code']})" if q["quota_code"] else ""))
                     for q in result.quotas], right=("In use", "Account quota", "Cap"))
    if result.tasks is not None:
        if result.failures:
            print_table(f"Latest failures (newest first, {len(result.failures)})",
                        ("Updated", "Status", "Object", "Error", "Message"),
                        [(f.updated_at, f.status, f.uri, f.error_code, _shorten(f.error_message))
                         for f in result.failures])
        else:
            click.echo("No FAILED or PARTIAL tasks.")
    old = sum(v["tasks"] for v in (result.in_flight_too_long or {}).values())
    if old:
        from rekpipe.cli.console import note

        note(f"{old:,} tasks have been in flight longer than expected: see which are stuck with "
             "`rekpipe redrive --stuck --dry-run`, then re-route them with `rekpipe redrive --stuck`")
    dlq_total = sum(q.visible + q.in_flight for q in result.queues if q.is_dlq)
    if dlq_total:
        from rekpipe.cli.console import note

        note(f"{dlq_total:,} messages in dead-letter queues: move them back with `rekpipe redrive --dlq`")


def _shorten(text: str) -> str:
    return text if len(text) <= _MESSAGE_WIDTH else text[: _MESSAGE_WIDTH - 1] + "…"
