"""``rekpipe outputs``: where the results of one S3 object are, from (bucket, key, version).

The layout (``rekpipe_shared.outputs``) is a function of the object version and the task's run, so
the command needs no listing: it asks S3 for the current version (unless given one), reads that
version's task for its status and run, and prints the run's prefix, its manifest and the key's
``latest.json`` pointer. An object never analysed gets the prefix its first run will write to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rekpipe.cli.stack import Clients, GlobalOptions


@click.command(short_help="Print where the results of an S3 object are.")
@click.argument("uri", metavar="S3_URI")
@click.option("--version-id", metavar="VERSION", help="This version instead of the current one (also a deleted one).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def cli(options: GlobalOptions, uri: str, version_id: str | None, as_json: bool) -> None:
    """Print where the analysis results of the object at S3_URI (s3://bucket/key, or
    s3://bucket/key?versionId=...) are: its task's status and run, the run's results prefix, its
    manifest, and the key's latest.json pointer.

    \b
    Examples:
      rekpipe outputs "s3://my-photos/archive/2019/beach day.png"
      rekpipe outputs s3://my-photos/dup/same.jpg --version-id 3HL4kqtJlcpXroDTDmJ
    """
    do_cli(options, uri=uri, version_id=version_id, as_json=as_json)


@dataclass(frozen=True)
class OutputLocation:
    """Everything ``rekpipe outputs`` prints; ``asdict`` of it is the ``--json`` output."""

    source: str
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    task_id: str
    status: str | None
    run: int | None
    results_prefix: str
    manifest: str | None
    latest_pointer: str
    all_runs_prefix: str
    long_key: bool


def parse_s3_uri(uri: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key[?versionId=v]`` -> (bucket, key, version). The key is taken literally, as the
    AWS CLI takes it (spaces, ``+``, ``#`` and ``?`` included); a bad URI is the user's to fix."""
    from rekpipe.cli.exceptions import UserException

    rest = uri.removeprefix("s3://") if uri.startswith("s3://") else None
    bucket, _, key = (rest or "").partition("/")
    version = None
    if "?versionId=" in key:
        key, _, version = key.rpartition("?versionId=")
    if rest is None or not bucket or not key:
        raise UserException(f"{uri!r} is not an S3 object URI: write it as s3://bucket/key")
    return bucket, key, version or None


def do_cli(options: GlobalOptions, *, uri: str, version_id: str | None = None, as_json: bool = False,
           clients: Clients | None = None) -> OutputLocation:
    """Resolve and print the output location of one S3 object.

    Parameters
    ----------
    options: GlobalOptions
        The group's options.
    uri: str
        ``s3://bucket/key`` (``?versionId=`` allowed).
    version_id: str | None
        A version to look up instead of the current one.
    as_json: bool
        Print JSON instead of lines.
    clients: Clients | None
        Injected client factory (tests).
    """
    from botocore.exceptions import ClientError

    from rekpipe.cli.console import note
    from rekpipe.cli.exceptions import UserException
    from rekpipe.cli.stack import Clients
    from rekpipe_shared.media import media_type_for
    from rekpipe_shared.outputs import ResultsLayout, s3_uri, source_uri
    from rekpipe_shared.tasks import TaskTable, task_id_for

    bucket, key, uri_version = parse_s3_uri(uri)
    if version_id and uri_version and version_id != uri_version:
        raise UserException(f"--version-id {version_id} and the URI's versionId {uri_version} differ: give one")
    version_id = version_id or uri_version
    media_type = media_type_for(key)
    if media_type is None:
        raise UserException(f"{key!r} is not an image or video the pipeline analyses (.jpg .jpeg .png .mp4 .mov)")
    clients = clients or Clients(options)
    outputs = clients.stack_outputs()
    output_bucket, table_name = outputs.require("OutputBucketName"), outputs.require("TaskTableName")
    etag = None
    head_args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        head_args["VersionId"] = version_id
    try:
        head = clients.client("s3").head_object(**head_args)
        version_id = version_id or head.get("VersionId")
        etag = str(head.get("ETag", "")).strip('"') or None
    except ClientError as error:
        if not version_id:
            code = error.response.get("Error", {}).get("Code")
            raise UserException(f"Cannot read s3://{bucket}/{key} ({code}): check the key, or pass --version-id "
                                "to look up a version that was deleted") from None
    if version_id == "null":
        version_id = None
    task_id = task_id_for(bucket, key, version_id, etag)
    task = TaskTable(table_name, boto3_client=clients.client("dynamodb")).get(task_id)
    layout = ResultsLayout(bucket=bucket, key=key, version_id=version_id, etag=(task or {}).get("etag") or etag,
                           video=media_type == "video", run=int((task or {}).get("run") or 1))
    location = OutputLocation(
        source=source_uri(bucket, key, version_id), bucket=bucket, key=key, version_id=version_id, etag=etag,
        task_id=task_id, status=(task or {}).get("status"), run=int(task["run"]) if task and task.get("run") else None,
        results_prefix=s3_uri(output_bucket, layout.run_prefix),
        manifest=(task or {}).get("manifest_uri"),
        latest_pointer=s3_uri(output_bucket, layout.pointer_key),
        all_runs_prefix=s3_uri(output_bucket, layout.version_prefix), long_key=layout.long_key,
    )
    if as_json:
        import json

        click.echo(json.dumps(asdict(location), indent=2))
        return location
    if task is None:
        note(f"{location.source} has no task yet (not ingested, or ingested under another version); "
             "its first run will write to the prefix below.")
    for label, value in (("Source", location.source), ("Task", f"{task_id} {location.status or 'not analysed'}"
                                                      + (f" (run {location.run})" if location.run else "")),
                         ("Results", location.results_prefix), ("Manifest", location.manifest or "-"),
                         ("Latest", location.latest_pointer), ("All runs", location.all_runs_prefix)):
        click.echo(f"{label + ':':<10}{value}")
    if layout.long_key:
        note("The key is too long for a readable output path: its results are under _long-keys/<sha256 of the key>.")
    return location
