"""``rekpipe report``: the click surface of the static HTML report; the work is in :mod:`rekpipe.report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rekpipe.cli.stack import Clients, GlobalOptions
    from rekpipe.report import ReportResult, ReportSource

DEFAULT_OUT = Path("rekpipe-report")
DEFAULT_WORKERS = 16
DEFAULT_REQUESTS_PER_SECOND = 500.0
"""Well under S3's 5,500 GET/s per prefix, so a report never slows the pipeline writing beside it."""
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


@click.command(short_help="Write a static HTML report of the results (output bucket, a prefix, or a local copy).")
@click.argument("source", required=False, metavar="[s3://BUCKET/PREFIX | FOLDER]")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Folder to write the report to (a previous report there is replaced).")
@click.option("--images", type=click.Choice(["embed", "link", "none"]), default="embed", show_default=True,
              help="Pictures: a downscaled copy in the report, a presigned S3 URL, or none (boxes on a blank frame).")
@click.option("--media", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With a FOLDER source: the folder of the analysed files (keys as paths), for the pictures.")
@click.option("--link-expiry", type=click.IntRange(60, MAX_PRESIGN_SECONDS), default=MAX_PRESIGN_SECONDS,
              show_default=True, help="Seconds a presigned picture URL stays valid (--images link).")
@click.option("--workers", type=click.IntRange(1, 64), default=DEFAULT_WORKERS, show_default=True,
              help="Parallel S3 reads.")
@click.option("--max-requests-per-second", type=click.FloatRange(min=1), default=DEFAULT_REQUESTS_PER_SECOND,
              show_default=True, help="Ceiling on S3 GET and LIST requests per second, across all workers.")
@click.option("--page-size", type=click.IntRange(10, 1000), default=100, show_default=True,
              help="Objects per page of the index.")
@click.pass_obj
def cli(options: GlobalOptions, source: str | None, out: Path, images: str, media: Path | None, link_expiry: int,
        workers: int, max_requests_per_second: float, page_size: int) -> None:
    """Write a self-contained HTML report of what Rekognition found: open OUT/index.html in a browser,
    offline, with no server.

    SOURCE is the stack's output bucket by default, an s3:// URI (any prefix of the output bucket), or
    the folder that `rekpipe local run --out` wrote. Objects are found by their manifest.json; one entry
    per source object version (the newest run). Reports from the local simulator say so on every page.

    \b
    Examples:
      rekpipe report                                   # the stack's whole output bucket
      rekpipe report s3://my-output/sync/2019/ --images link
      rekpipe report rekpipe-output --media ~/photos   # a local run's copy
    """
    do_cli(options, source=source, out=out, images=images, media=media, link_expiry=link_expiry, workers=workers,
           requests_per_second=max_requests_per_second, page_size=page_size)


def do_cli(options: GlobalOptions, *, source: str | None = None, out: Path = DEFAULT_OUT, images: str = "embed",
           media: Path | None = None, link_expiry: int = MAX_PRESIGN_SECONDS, workers: int = DEFAULT_WORKERS,
           requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND, page_size: int = 100,
           clients: Clients | None = None) -> ReportResult:
    """Resolve the source, echo it, build the report, print where it is (stdout).

    Parameters
    ----------
    options: GlobalOptions
        The group's options (the stack and endpoint, for an S3 source).
    source: str | None
        ``s3://bucket/prefix``, a folder, or None for the stack's output bucket.
    clients: Clients | None
        Injected client factory (tests).

    Returns
    -------
    ReportResult
    """
    from rekpipe.cli.console import note
    from rekpipe.cli.exceptions import UserException
    from rekpipe.report import ReportOptions, build_report

    if media is not None and (source is None or source.startswith("s3://")):
        raise UserException("--media is for a FOLDER source (a local copy); an S3 source reads the pictures from "
                            "their bucket")
    report_source = _resolve(options, source, media=media, workers=workers, requests_per_second=requests_per_second,
                             clients=clients)
    reads = (f", {workers} workers, at most {requests_per_second:g} S3 requests/s" if source is None
             or source.startswith("s3://") else "")
    note(f"Report of {report_source.description} -> {out} (pictures: {images}{reads})")
    if media is None and images != "none" and reads == "":
        note("No --media: image pages draw their boxes on a blank frame; pass --media FOLDER (the analysed files) "
             "for the pictures")
    result = build_report(report_source, ReportOptions(out=out, images=images, link_expiry=link_expiry,
                                                        workers=workers, requests_per_second=requests_per_second,
                                                        page_size=page_size))
    print_result(result)
    return result


def print_result(result: ReportResult) -> None:
    """Where the report is and what it holds: stdout, since it is the command's result."""
    counts = ", ".join(f"{count:,} {status}" for status, count in result.counts.items())
    extra = []
    if result.superseded:
        extra.append(f"{result.superseded:,} older runs superseded")
    if result.not_manifests:
        extra.append(f"{result.not_manifests:,} other manifest.json files ignored")
    if result.unreadable_outputs:
        extra.append(f"{result.unreadable_outputs:,} outputs unreadable (noted on their pages)")
    click.echo(f"Report of {result.objects:,} objects ({counts}) written in {result.seconds:.1f} s: "
               f"{result.files_written:,} files, {result.bytes_written / 1e6:.1f} MB"
               + (f"; {'; '.join(extra)}" if extra else "") + ".")
    if result.synthetic:
        click.echo("The analysis content is synthetic (local simulator); every page says so.")
    click.echo(f"Open {result.index.resolve().as_uri()}")


def _resolve(options: GlobalOptions, source: str | None, *, media: Path | None, workers: int,
             requests_per_second: float, clients: Clients | None) -> ReportSource:
    from rekpipe.report import FolderSource, RateLimiter, S3Source
    from rekpipe.report.source import split_s3_uri

    if source is not None and not source.startswith("s3://"):
        return FolderSource(Path(source), media)
    from botocore.config import Config

    from rekpipe.cli.stack import Clients

    clients = clients or Clients(options)
    if source is None:
        bucket, prefix = clients.stack_outputs().require("OutputBucketName"), ""
    else:
        try:
            bucket, prefix = split_s3_uri(source)
        except ValueError:
            from rekpipe.cli.exceptions import UserException

            raise UserException(f"{source!r} is not s3://BUCKET/PREFIX: pass the output bucket's URI, or a folder"
                                ) from None
    # Adaptive retries slow every worker down together when S3 answers SlowDown (503).
    config = Config(max_pool_connections=workers + 2, retries={"mode": "adaptive", "max_attempts": 8},
                    user_agent_appid="rekpipe-report")
    s3 = clients.session.client("s3", endpoint_url=clients.target.endpoint_url, config=config)
    return S3Source(s3, bucket, prefix, RateLimiter(requests_per_second))


__all__ = ["cli", "do_cli", "print_result"]
