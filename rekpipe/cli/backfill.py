"""``rekpipe backfill``: analyse objects already in S3 with an S3 Batch Operations job.

The objects are listed page by page and written to a CSV manifest on disk as they arrive, so
a bucket of millions never sits in memory. The manifest goes to the stack's inventory bucket and
an S3 Batch Operations job invokes the stack's ``ingest_batch`` function for every row, which
writes one task per object version (a re-run is a no-op, never a second bill). ``--inventory``
uses an existing S3 Inventory report instead of listing. ``--dry-run`` only counts and estimates.

Over 400 lines: the click command, the manifest writer and the CreateJob request with its report and role are
one user action, each part read with the stack's outputs; the plan (counting, inventory reading) is
``rekpipe.cli.backfill_plan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rekpipe_shared.schema import (
    BATCH_INVOCATION_SCHEMA_VERSION as INVOCATION_SCHEMA_VERSION,
)
from rekpipe_shared.schema import BATCH_REPORT_FORMAT as REPORT_FORMAT
from rekpipe_shared.schema import CSV_MANIFEST_FORMAT, INVENTORY_MANIFEST_FORMAT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from rekpipe.cli.backfill_plan import BackfillResult, BackfillSummary, ListedObject
    from rekpipe.cli.stack import Clients, GlobalOptions, StackOutputs
    from rekpipe_shared.settings import PipelineSettings

DEFAULT_PRIORITY = 10
DEFAULT_VIDEO_MBPS = 5.0
"""Typical bit rate of a 1080p H.264 upload; only used to guess minutes from bytes."""
USER_ARGUMENT_SOURCE = "rekpipe-backfill"


@dataclass(frozen=True)
class BackfillLocations:
    """Where a backfill's manifest and report go, from the stack's outputs only.

    The Batch Operations role may read manifests under ``ManifestPrefix`` and S3 Inventory reports
    under ``InventoryPrefix``, and write reports under ``BatchReportPrefix`` (all in
    ``ManifestBucketName``); the lifecycle rules that expire them apply to the same prefixes. Taking
    the locations from the outputs keeps the CLI inside the role's grants ("Granting permissions for
    Batch Operations", Amazon S3 User Guide).
    """

    manifest_bucket: str
    manifest_prefix: str
    inventory_prefix: str
    report_bucket: str
    report_prefix: str
    """Without a trailing ``/``: Batch Operations writes ``<prefix>/job-<id>/...``."""

    @classmethod
    def from_outputs(cls, outputs: StackOutputs) -> BackfillLocations:
        bucket = outputs.require("ManifestBucketName")
        return cls(manifest_bucket=bucket, manifest_prefix=outputs.require("ManifestPrefix"),
                   inventory_prefix=outputs.require("InventoryPrefix"), report_bucket=bucket,
                   report_prefix=outputs.require("BatchReportPrefix").rstrip("/"))

    def manifest_key(self, name: str) -> str:
        return f"{self.manifest_prefix.rstrip('/')}/{name}"

    def check_inventory(self, bucket: str, key: str) -> None:
        """An inventory manifest outside the role's read grant would fail the job: say so before creating it."""
        from rekpipe.cli.exceptions import UserException

        prefix = self.inventory_prefix.rstrip("/") + "/"
        if bucket != self.manifest_bucket or not key.startswith(prefix):
            raise UserException(
                f"s3://{bucket}/{key} is outside s3://{self.manifest_bucket}/{prefix}, the only place the stack's "
                "Batch Operations role may read S3 Inventory reports, so the job would fail to read it; deliver the "
                f"inventory there (the existing-content bucket's inventory already is), or copy the report there"
            )


@click.command(short_help="Analyse objects already in S3 (S3 Batch Operations job).")
@click.option("--bucket", metavar="BUCKET", help="Bucket to list. Not needed with --inventory.")
@click.option("--prefix", metavar="PREFIX", default="", help="Only keys starting with this prefix.")
@click.option("--inventory", metavar="S3_URI",
              help="Use an S3 Inventory report instead of listing: s3://bucket/path/manifest.json (CSV format).")
@click.option("--dry-run", is_flag=True, help="Only count objects and estimate the Rekognition cost.")
@click.option("--yes", "-y", is_flag=True, help="Create the job without asking for confirmation.")
@click.option("--priority", type=click.IntRange(0, 2_147_483_647), default=DEFAULT_PRIORITY, show_default=True,
              help="Batch Operations job priority (higher runs first).")
@click.option("--settings-json", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="Pipeline settings that decide each object's operations (for the estimate and the manifest): "
                   "a JSON object of settings, or cdk.json (default: the built-in defaults).")
@click.option("--assumed-video-mbps", type=click.FloatRange(min=0.01), default=DEFAULT_VIDEO_MBPS,
              show_default=True, help="Bit rate used to estimate video minutes from size (durations are unknown "
                                      "before analysis).")
@click.pass_obj
def cli(options: GlobalOptions, bucket: str | None, prefix: str, inventory: str | None, dry_run: bool, yes: bool,
        priority: int, settings_json: Path | None, assumed_video_mbps: float) -> None:
    """Analyse objects already in S3: list them into a CSV manifest (or use an S3 Inventory report),
    upload it to the stack's inventory bucket and create an S3 Batch Operations job that feeds them
    to the pipeline. Re-running is safe: an object version already known is not analysed again.

    \b
    Examples:
      rekpipe backfill --bucket photos --prefix 2019/ --dry-run
      rekpipe backfill --bucket photos --prefix 2019/ --yes
      rekpipe backfill --inventory s3://inventories/photos/daily/2024-05-01T01-00Z/manifest.json
    """
    do_cli(options, bucket=bucket, prefix=prefix, inventory=inventory, dry_run=dry_run, yes=yes, priority=priority,
           settings_json=settings_json, assumed_video_mbps=assumed_video_mbps)


def do_cli(
    options: GlobalOptions,
    *,
    bucket: str | None,
    prefix: str = "",
    inventory: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    priority: int = DEFAULT_PRIORITY,
    settings_json: Path | None = None,
    assumed_video_mbps: float = DEFAULT_VIDEO_MBPS,
    clients: Clients | None = None,
) -> BackfillResult:
    """Count, or list into a manifest and start the Batch Operations job.

    Parameters
    ----------
    options: GlobalOptions
        The group's options.
    bucket, prefix: str
        What to list (``bucket`` may be None with ``inventory``).
    inventory: str | None
        ``s3://.../manifest.json`` of an S3 Inventory report in CSV format.
    dry_run: bool
        Count and estimate; no upload, no job.
    yes: bool
        Skip the confirmation prompt.
    priority: int
        Job priority.
    settings_json: Path | None
        Settings used to decide the operations (and so the price) of each object.
    assumed_video_mbps: float
        Bit rate for the video-minutes estimate.
    clients: Clients | None
        Injected client factory (tests); built from ``options`` otherwise.

    Returns
    -------
    BackfillResult
        The counts and, unless a dry run, the job.
    """
    from rekpipe.cli.backfill_plan import BackfillResult, BackfillSummary, parse_s3_uri
    from rekpipe.cli.console import note
    from rekpipe.cli.exceptions import UserException
    from rekpipe.cli.stack import Clients

    if inventory and prefix:
        raise UserException("--prefix cannot be combined with --inventory: Batch Operations runs over the whole "
                            "inventory report; list the bucket with --bucket/--prefix instead")
    if not bucket and not inventory:
        raise UserException("Nothing to backfill: pass --bucket BUCKET [--prefix PREFIX], "
                            "or --inventory s3://bucket/path/manifest.json")
    inventory_location = parse_s3_uri(inventory, option="--inventory") if inventory else None
    settings = load_settings(settings_json)
    clients = clients or Clients(options)
    target = clients.target

    source = f"inventory {inventory}" if inventory else f"s3://{bucket}/{prefix}"
    note(f"Backfill of {source} ({'dry run: nothing is uploaded or started' if dry_run else target.describe()})")
    note(f"Settings: {'defaults' if settings_json is None else settings_json}; image operations "
         f"{', '.join(settings.image_operations) or 'none'}"
         + (" (+ prefix rules)" if settings.image_prefix_operations else "")
         + f"; video operations {', '.join(settings.video_operations) or 'none'}; region {target.region}"
         + (f"; endpoint {target.endpoint_url}" if target.endpoint_url else ""))

    summary = BackfillSummary(settings=settings, video_mbps=assumed_video_mbps)
    s3 = clients.client("s3")
    if dry_run:
        from rekpipe.cli.backfill_plan import iter_bucket, iter_inventory, print_estimate, read_inventory_manifest

        if inventory_location:
            delivery = read_inventory_manifest(s3, *inventory_location, expected_bucket=bucket)
            listing = iter_inventory(s3, delivery.manifest)
            source = f"inventory of s3://{delivery.source_bucket} ({inventory})"
        else:
            assert bucket is not None
            listing = iter_bucket(s3, bucket, prefix, versioned=_is_versioned(s3, bucket))
        _consume(listing, summary)
        print_estimate(summary, source)
        return BackfillResult(summary=summary)

    outputs = clients.stack_outputs()
    if inventory_location:
        return _backfill_from_inventory(clients, outputs, inventory_location, bucket=bucket, summary=summary,
                                        yes=yes, priority=priority)
    assert bucket is not None
    return _backfill_from_listing(clients, outputs, bucket, prefix, summary=summary, yes=yes, priority=priority)


def load_settings(path: Path | None) -> PipelineSettings:
    """Settings from a JSON file (an object of settings, or a ``cdk.json``), or the defaults."""
    import json

    from rekpipe.cli.exceptions import UserException
    from rekpipe_shared.exceptions import SettingsError
    from rekpipe_shared.settings import PipelineSettings

    if path is None:
        return PipelineSettings()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserException(f"Cannot read settings from {path}: {error}; pass a JSON object of settings") from None
    if isinstance(values, dict) and isinstance(values.get("context"), dict):  # a cdk.json
        values = values["context"].get("settings") or {}
    if not isinstance(values, dict):
        raise UserException(f"{path} is not a JSON object of settings (like the `settings` object in cdk.json)")
    try:
        return PipelineSettings.from_mapping(values)
    except SettingsError as error:
        raise UserException(f"{path}: {error}; fix the file and run again") from None


# --- the job -----------------------------------------------------------------------------------
def _backfill_from_listing(clients: Clients, outputs: StackOutputs, bucket: str, prefix: str, *,
                           summary: BackfillSummary, yes: bool, priority: int) -> BackfillResult:
    import tempfile
    from datetime import UTC, datetime

    from rekpipe.cli.backfill_plan import BackfillResult, iter_bucket, manifest_row
    from rekpipe.cli.console import note, plural

    locations = BackfillLocations.from_outputs(outputs)
    inventory_bucket = locations.manifest_bucket
    function_arn = outputs.require("IngestBatchFunctionArn")
    role_arn = outputs.require("BatchOperationsRoleArn")
    _warn_if_foreign_bucket(outputs, bucket)
    s3 = clients.client("s3")
    versioned = _is_versioned(s3, bucket)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    manifest_key = locations.manifest_key(f"{stamp}-{bucket}.csv")
    note(f"Manifest: s3://{inventory_bucket}/{manifest_key} (columns Bucket,Key"
         + (",VersionId: the bucket is versioned, so each row pins the current version)" if versioned else ")"))

    with tempfile.TemporaryDirectory(prefix="rekpipe-backfill-") as folder:
        path = Path(folder) / "manifest.csv"
        with path.open("w", encoding="utf-8", newline="") as manifest:

            def write(listed: ListedObject) -> None:
                manifest.write(manifest_row(bucket, listed, versioned=versioned))

            _consume(iter_bucket(s3, bucket, prefix, versioned=versioned), summary, on_included=write)
        note(summary.one_line())
        if summary.included == 0:
            note(f"Nothing to backfill under s3://{bucket}/{prefix}: no object there is one the pipeline analyses.")
            return BackfillResult(summary=summary)
        _confirm(yes, f"Create a Batch Operations job for {plural(summary.included, 'object')} "
                      f"(estimated ${summary.total_cost:,.2f} of Rekognition)?")
        s3.upload_file(str(path), inventory_bucket, manifest_key, ExtraArgs={"ContentType": "text/csv"})
    head = s3.head_object(Bucket=inventory_bucket, Key=manifest_key)
    fields = ["Bucket", "Key", "VersionId"] if versioned else ["Bucket", "Key"]
    account, partition = _caller(clients)
    manifest_spec = {"Spec": {"Format": CSV_MANIFEST_FORMAT, "Fields": fields},
                     "Location": _location(partition, inventory_bucket, manifest_key, head)}
    user_arguments = {"source": USER_ARGUMENT_SOURCE, "bucket": bucket} | ({"prefix": prefix[:1024]} if prefix else {})
    return _create_job(clients, account, partition, manifest_spec, f"s3://{bucket}/{prefix}", summary=summary,
                       manifest_uri=f"s3://{inventory_bucket}/{manifest_key}", user_arguments=user_arguments,
                       function_arn=function_arn, role_arn=role_arn, locations=locations, priority=priority)


def _backfill_from_inventory(clients: Clients, outputs: StackOutputs, location: tuple[str, str], *,
                             bucket: str | None, summary: BackfillSummary, yes: bool, priority: int) -> BackfillResult:
    from rekpipe.cli.backfill_plan import read_inventory_manifest
    from rekpipe.cli.console import note

    locations = BackfillLocations.from_outputs(outputs)
    locations.check_inventory(*location)
    function_arn = outputs.require("IngestBatchFunctionArn")
    role_arn = outputs.require("BatchOperationsRoleArn")
    s3 = clients.client("s3")
    manifest = read_inventory_manifest(s3, *location, expected_bucket=bucket)
    _warn_if_foreign_bucket(outputs, manifest.source_bucket)
    note(f"Inventory of s3://{manifest.source_bucket}: {manifest.file_count:,} data files, "
         f"created {manifest.created or 'at an unknown time'}; run with --dry-run to count and estimate it")
    if manifest.all_versions:
        note("Warning: this inventory lists every object version, so noncurrent versions are analysed (and billed) "
             "too; configure the inventory with current versions only to avoid that")
    _confirm(yes, f"Create a Batch Operations job over the inventory of s3://{manifest.source_bucket}?")
    account, partition = _caller(clients)
    manifest_spec = {"Spec": {"Format": INVENTORY_MANIFEST_FORMAT},
                     "Location": _location(partition, location[0], location[1], manifest.head)}
    return _create_job(clients, account, partition, manifest_spec, f"inventory of s3://{manifest.source_bucket}",
                       summary=summary, manifest_uri=f"s3://{location[0]}/{location[1]}",
                       user_arguments={"source": USER_ARGUMENT_SOURCE, "bucket": manifest.source_bucket},
                       function_arn=function_arn, role_arn=role_arn, locations=locations, priority=priority)


def _create_job(clients: Clients, account: str, partition: str, manifest_spec: dict[str, Any], what: str, *,
                summary: BackfillSummary, manifest_uri: str, user_arguments: dict[str, str], function_arn: str, role_arn: str,
                locations: BackfillLocations, priority: int) -> BackfillResult:
    import uuid

    from rekpipe.cli.backfill_plan import BackfillResult

    request = {
        "AccountId": account,
        "ConfirmationRequired": False,
        "Operation": {"LambdaInvoke": {"FunctionArn": function_arn,
                                       "InvocationSchemaVersion": INVOCATION_SCHEMA_VERSION,
                                       "UserArguments": user_arguments}},
        "Report": {"Bucket": f"arn:{partition}:s3:::{locations.report_bucket}", "Format": REPORT_FORMAT,
                   "Enabled": True, "Prefix": locations.report_prefix, "ReportScope": "AllTasks"},
        # One token per run: botocore's retries of this call cannot create a second job.
        "ClientRequestToken": str(uuid.uuid4()),
        "Manifest": manifest_spec,
        "Description": f"rekpipe backfill of {what}"[:256],
        "Priority": priority,
        "RoleArn": role_arn,
    }
    job_id = _submit(clients, request, manifest_uri)
    _print_job(clients, job_id, account, manifest_uri, f"s3://{locations.report_bucket}/{locations.report_prefix}/",
               summary)
    return BackfillResult(summary=summary, job_id=job_id, manifest_uri=manifest_uri, request=request)


def _submit(clients: Clients, request: dict[str, Any], manifest_uri: str) -> str:
    """CreateJob; an emulator without S3 Batch Operations gets a message, not a bug report."""
    from botocore.exceptions import ClientError

    from rekpipe.cli.exceptions import UserException

    try:
        return str(clients.client("s3control").create_job(**request)["JobId"])
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        endpoint = clients.target.endpoint_url
        if endpoint and code in ("404", "NotFound", "NotImplemented", "InvalidAction", "UnknownOperationException"):
            raise UserException(
                f"{endpoint} does not implement S3 Batch Operations (CreateJob answered {code}); the manifest is "
                f"at {manifest_uri}: run the backfill against AWS, or with the emulator's own Batch Operations "
                "runner (`rekpipe local`)"
            ) from None
        raise


def _print_job(clients: Clients, job_id: str, account: str, manifest_uri: str, report_uri: str,
               summary: BackfillSummary) -> None:
    """The result on stdout: the job and the two ways to watch it."""
    from rekpipe.cli.console import plural
    from rekpipe.cli.stack import DEFAULT_STACK_NAME

    target = clients.target
    aws_flags = f" --region {target.region}" + (f" --profile {target.profile}" if target.profile else "")
    if target.endpoint_url:
        aws_flags += f" --endpoint-url {target.endpoint_url}"
    rekpipe_flags = " --local" if target.local else aws_flags
    if target.stack_name != DEFAULT_STACK_NAME:
        rekpipe_flags += f" --stack-name {target.stack_name}"
    objects = f" for {plural(summary.included, 'object')}" if summary.included else ""
    click.echo(f"Created S3 Batch Operations job {job_id}{objects}.")
    click.echo(f"Manifest: {manifest_uri}")
    click.echo(f"Report:   {report_uri}")
    click.echo("Watch it:")
    click.echo(f"  aws s3control describe-job --account-id {account} --job-id {job_id}{aws_flags}")
    click.echo(f"  rekpipe{rekpipe_flags} status")


# --- helpers -----------------------------------------------------------------------------------
def _consume(listing: Iterator[ListedObject], summary: BackfillSummary, *,
             on_included: Callable[[ListedObject], None] | None = None) -> None:
    """Classify every listed object, handing the ones to analyse to ``on_included``; progress on stderr."""
    from rekpipe.cli.console import Progress

    with Progress() as progress:
        for listed in listing:
            if summary.add(listed) and on_included is not None:
                on_included(listed)
            progress.update(summary.progress_line())
        progress.done(summary.progress_line())


def _is_versioned(s3: Any, bucket: str) -> bool:
    """Whether the bucket has (or had) versioning: then listings carry version ids."""
    from botocore.exceptions import ClientError

    from rekpipe.cli.exceptions import UserException

    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise UserException(f"Bucket {bucket} was not found: check --bucket (and --region/--profile)") from None
        raise
    return status in ("Enabled", "Suspended")


def _warn_if_foreign_bucket(outputs: StackOutputs, bucket: str) -> None:
    from rekpipe.cli.console import note

    known = {outputs.content_bucket_name, outputs.existing_content_bucket_name} - {None}
    if known and bucket not in known:
        note(f"Warning: {bucket} is not a bucket of stack {outputs.stack_name} ({', '.join(sorted(known))}); "
             "its ingest function and Batch Operations role may not be allowed to read it")


def _caller(clients: Clients) -> tuple[str, str]:
    """Account id and partition of the caller (the job is created in that account)."""
    identity = clients.client("sts").get_caller_identity()
    arn = str(identity.get("Arn", "arn:aws:"))
    return str(identity["Account"]), arn.split(":")[1] or "aws"


def _location(partition: str, bucket: str, key: str, head: dict[str, Any]) -> dict[str, str]:
    location = {"ObjectArn": f"arn:{partition}:s3:::{bucket}/{key}", "ETag": str(head["ETag"]).strip('"')}
    if head.get("VersionId") and head["VersionId"] != "null":
        location["ObjectVersionId"] = head["VersionId"]
    return location


def _confirm(yes: bool, question: str) -> None:
    if not yes:
        click.confirm(question, abort=True, err=True)

