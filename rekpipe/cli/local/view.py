"""What ``rekpipe local`` prints: the run's table and summary, the emulator's connection details, the notes.

Results go to stdout, progress and notes to stderr (:mod:`rekpipe.cli.console`).
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import click

from rekpipe_shared.schema import TERMINAL_STATUSES

if TYPE_CHECKING:
    from pathlib import Path

    from rekpipe.cli.local.results import LocalRunResult, ObjectOutcome
    from rekpipe.emulator.runtime import EmbeddedRuntime
    from rekpipe.simulator import SimulatorConfig

SYNTHETIC_NOTE = ("Analysis content is SYNTHETIC: the Rekognition simulator invents labels, faces and text "
                  "(deterministic per seed and file); it never looks at pixels. Behaviour (errors, throttling, "
                  "video jobs, notices) follows the service.")
_TOP_LABELS = 3
_LABEL_SOURCES = (
    ("DetectLabels", "Labels", "Name", "Confidence"),
    ("StartLabelDetection", "labels", "name", "max_confidence"),
    ("DetectModerationLabels", "ModerationLabels", "Name", "Confidence"),
    ("StartContentModeration", "moderation_labels", "name", "max_confidence"),
)
"""Where each output keeps its labels: (API, list member, name field, confidence field)."""


def describe_simulator(config: SimulatorConfig) -> str:
    """The simulator's knobs in one note line."""
    low, high = config.job_duration or (0, 0)
    quotas = ", ".join(f"{op}={tps:g}" for op, tps in sorted(config.tps_quotas.items())) or "none"
    return (f"Rekognition simulator: seed {config.seed}, video jobs {low:g}-{high:g} s, throttle rate "
            f"{config.throttle_rate:g}, failed job rate {config.failed_job_rate:g}, lost notice rate "
            f"{config.lost_notice_rate:g}, TPS quotas {quotas}")


# --- run ---------------------------------------------------------------------------------------------
def result_text(outcome: ObjectOutcome, output_bucket: str, out: Path) -> str:
    """Top labels (from the copied outputs) and, for FAILED/PARTIAL, the error code and message."""
    from rekpipe.cli.status import _failure, _shorten

    if not outcome.analysed or outcome.task is None:
        return outcome.result or ("no task was written: ingest never saw the upload" if outcome.analysed else "")
    parts = []
    labels = _top_labels(outcome.task.get("outputs") or {}, output_bucket, out)
    if labels:
        parts.append(labels)
    if outcome.status in ("FAILED", "PARTIAL"):
        failure = _failure(outcome.task)
        parts.append(f"{failure.error_code}: {failure.error_message}")
    elif outcome.status not in TERMINAL_STATUSES:
        parts.append(f"still {outcome.status}")
    return _shorten("; ".join(parts))


def _top_labels(outputs: dict[str, str], output_bucket: str, out: Path) -> str:
    import json

    for api, member, name_field, confidence_field in _LABEL_SOURCES:
        uri = outputs.get(api)
        prefix = f"s3://{output_bucket}/"
        if not uri or not uri.startswith(prefix):
            continue
        try:
            document = json.loads((out / uri[len(prefix):]).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        labels = sorted(document.get(member) or [], key=lambda label: -(label.get(confidence_field) or 0))
        shown = [f"{label.get(name_field)} {label.get(confidence_field) or 0:.0f}%" for label in labels[:_TOP_LABELS]]
        if shown:
            return ("moderation: " if "oderation" in api else "") + ", ".join(shown)
    return f"{len(outputs)} outputs" if outputs else ""


def print_run(result: LocalRunResult) -> None:
    """The table of objects, the call counts and the summary, on stdout; notes on stderr."""
    from rekpipe.cli.console import note, plural, print_table, stdout_console

    rows = [(o.key, o.media_type or "-", o.status, ", ".join(o.operations) or "-", o.result)
            for o in sorted(result.objects, key=lambda o: o.key)]
    print_table(f"Objects ({len(rows)})", ("Object key", "Media", "Status", "Operations", "Top labels / error"), rows)
    _print_calls(result.simulator_calls)
    statuses = result.by_status()
    analysed = sum(o.analysed for o in result.objects)
    failed_jobs = sum(job.status == "FAILED" for job in result.video_jobs)
    timings = result.timings
    lines = [
        f"{plural(analysed, 'object')} analysed: {statuses.get('SUCCEEDED', 0)} SUCCEEDED, "
        f"{statuses.get('PARTIAL', 0)} PARTIAL, {statuses.get('FAILED', 0)} FAILED"
        + (f", {len(result.lost)} without a final status" if result.lost else "")
        + f"; {statuses.get('SKIPPED', 0)} skipped by ingest.",
        f"Video jobs: {len(result.video_jobs)} ({failed_jobs} failed, {len(result.lost_notices)} notices lost, "
        f"peak {result.peak_running_jobs} running); video slots still held: {len(result.slot_holders)}.",
        f"Wall time {timings.get('wall', 0):.1f} s (emulator start {timings.get('start', 0):.1f} s, "
        f"upload {timings.get('upload', 0):.1f} s, analysis {timings.get('analysis', 0):.1f} s).",
        f"{plural(result.copied, 'output')} copied to {result.out}; function logs in {result.log_path}. "
        "Analysis content is synthetic.",
    ]
    if result.report is not None:
        lines.append(f"HTML report: open {result.report.resolve().as_uri()}")
    console = stdout_console()
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for refusal in result.access_refusals:
        note(f"IAM refused: {refusal}")
    if result.access_refusals:
        note(f"{plural(len(result.access_refusals), 'distinct call')} refused by the stack's IAM policies, as AWS "
             "would refuse them: add the grant to the role (stack/) if the call is meant to happen")
    problems = statuses.get("FAILED", 0) + statuses.get("PARTIAL", 0)
    if problems:
        note(f"{plural(problems, 'object')} ended FAILED or PARTIAL (expected outcomes: bad files, injected faults); "
             "the table shows each error")


def _print_calls(calls: dict[str, Any]) -> None:
    """The simulator's table of calls per operation (none when nothing called Rekognition)."""
    from rekpipe.cli.console import print_table

    call_rows = []
    for operation in sorted(calls.get("calls", {})):
        errors = calls.get("errors", {}).get(operation, {})
        throttled = calls.get("throttled", {}).get(operation, 0)
        other = ", ".join(f"{code} {count}" for code, count in sorted(errors.items())
                          if code not in ("ThrottlingException", "ProvisionedThroughputExceededException"))
        call_rows.append((operation, calls["calls"][operation], calls.get("succeeded", {}).get(operation, 0),
                          throttled, other or "-"))
    if call_rows:
        print_table("Rekognition simulator calls", ("Operation", "Calls", "OK", "Throttled", "Other errors"),
                    call_rows, right=("Calls", "OK", "Throttled"))


# --- up ----------------------------------------------------------------------------------------------
def print_up(runtime: EmbeddedRuntime, stream: IO[str], state_path: Path, log_path: Path) -> None:
    """What to connect to and how: on the real stdout (function output goes to the log meanwhile)."""
    endpoint, region = runtime.endpoint_url, runtime.options.region
    keys = runtime.operator_credentials() if runtime.iam else {"aws_access_key_id": "rekpipe-local",
                                                                "aws_secret_access_key": "rekpipe-local"}
    key_id, secret = keys["aws_access_key_id"], keys["aws_secret_access_key"]
    outputs = runtime.outputs
    content, output = outputs.get("ContentBucketName", "<content bucket>"), outputs.get("OutputBucketName", "<output>")
    backfill_source = outputs.get("ExistingContentBucketName", content)
    width = max(len(name) for name in outputs) if outputs else 0
    lines = [
        "Rekognition pipeline emulator is running (analysis content is synthetic).",
        f"  Endpoint:     {endpoint}",
        f"  Region:       {region}",
        f"  Credentials:  AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} (the emulator's operator: "
        "every call is authorized against the stack's IAM policies; these keys work only here)",
        f"  Stack:        {runtime.stack.stack_name if runtime.stack else '?'} (state in {state_path})",
        "Resources (stack outputs):",
        *(f"  {name.ljust(width)}  {value}" for name, value in sorted(outputs.items())),
        "Try it:",
        f"  export AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION={region}",
        f"  aws --endpoint-url {endpoint} s3 cp photo.jpg s3://{content}/",
        "  rekpipe --local status",
        f"  aws --endpoint-url {endpoint} s3 ls s3://{output}/ --recursive",
        f"  rekpipe --local outputs s3://{content}/photo.jpg   # where its results are (run prefix, latest.json)",
        f"  rekpipe --local backfill --bucket {backfill_source} --yes   # objects already in S3 (Batch Operations)",
        f"Function logs: {log_path}. Press Ctrl-C to stop.",
    ]
    click.echo("\n".join(lines), file=stream)
    stream.flush()


__all__ = ["SYNTHETIC_NOTE", "describe_simulator", "print_run", "print_up", "result_text"]
