"""Where analysis results go in the output bucket, and the manifest that lists them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rekpipe_shared.constants import ANALYSIS_SUFFIX, ASYNC_OUTPUT_PREFIX, MANIFEST_NAME, SYNC_OUTPUT_PREFIX
from rekpipe_shared.tasks import now_iso

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def analysis_prefix(source_key: str, *, video: bool) -> str:
    """``sync/<key>-analysis/`` for images, ``async/<key>-analysis/`` for videos."""
    mode = ASYNC_OUTPUT_PREFIX if video else SYNC_OUTPUT_PREFIX
    return f"{mode}/{source_key}{ANALYSIS_SUFFIX}/"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def put_json(s3: S3Client, bucket: str, key: str, body: Any) -> str:
    """Write one JSON document (encrypted by the bucket's default key) and return its URI."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body, default=str, separators=(",", ":")).encode(),
        ContentType="application/json",
    )
    return s3_uri(bucket, key)


def write_manifest(
    s3: S3Client,
    bucket: str,
    *,
    task: dict[str, Any],
    status: str,
    outputs: dict[str, str],
    errors: dict[str, dict[str, str]],
) -> str:
    """Write the manifest of one analysed object: its identity, outcome and every output."""
    prefix = analysis_prefix(task["object_key"], video=task.get("media_type") == "video")
    manifest = {
        "task_id": task["task_id"],
        "source": {
            "bucket": task["bucket"],
            "key": task["object_key"],
            "version_id": task.get("version_id"),
            "etag": task.get("etag"),
            "size": task.get("size"),
        },
        "media_type": task.get("media_type"),
        "status": status,
        "operations": list(task.get("operations", [])),
        "outputs": outputs,
        "errors": errors,
        "written_at": now_iso(),
    }
    return put_json(s3, bucket, prefix + MANIFEST_NAME, manifest)
