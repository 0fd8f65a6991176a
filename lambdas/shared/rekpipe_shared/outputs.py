"""Where analysis results go in the output bucket, and the manifest and pointer that find them.

The layout is a function of (source bucket, key, version, run), readable by a person browsing
the bucket, and no two tasks or runs can share an output key::

    <mode>/<bucket>/<key>/<version>/run-<NNN>/<API>.json            images (mode "sync")
    <mode>/<bucket>/<key>/<version>/run-<NNN>/<Folder>/page-NNNNN.json   videos (mode "async"),
                                                 .../<Folder>/summary.json
    <mode>/<bucket>/<key>/<version>/run-<NNN>/manifest.json
    <mode>/<bucket>/<key>/latest.json           the newest results of the key's current version

``<version>`` is ``version-<VersionId>`` or, for an unversioned object, ``etag-<ETag>``. Why no
two paths meet: the bucket (which has no ``/``) is its own segment; below the key, every file
has a fixed shape (``latest.json``, or ``<version>/run-<n>/...`` with a fixed set of leaf names),
and no shape is a tail of another, so ``<key1>/<shape1>`` equals ``<key2>/<shape2>`` only when
the keys and shapes are equal. A version segment never starts with ``run-``, and a version id's
``/`` and ``%`` are percent-encoded.

Long keys: S3 keys are at most 1,024 bytes. When the longest path a task can write would pass
that, the key is replaced by its SHA-256 under ``<mode>/_long-keys/<bucket>/<sha256>/``
(``_long-keys`` is not a valid bucket name, so it cannot meet a normal path); the manifest and
the pointer still name the full key. The choice depends on (bucket, key, version) only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.operations import CATALOGUE
from rekpipe_shared.schema import (
    ASYNC_OUTPUT_PREFIX,
    LATEST_POINTER_NAME,
    LONG_KEYS_SEGMENT,
    MANIFEST_NAME,
    MAX_S3_KEY_BYTES,
    SYNC_OUTPUT_PREFIX,
)
from rekpipe_shared.tasks import now_iso

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

COLLECT_STATE_NAME = "_collect_state.json"
SUMMARY_NAME = "summary.json"
_MAX_PAGE_LEAF = "page-99999.json"
_RUN_BUDGET = "run-999999"
"""The widest run segment planned for, so the long-key choice never changes between runs."""
_MAX_VERSION_SEGMENT = 200
"""A version id longer than this (none is, on S3) is hashed too, so the fallback always fits."""


def video_folder(start_api: str) -> str:
    """``LabelDetection``, ``ContentModeration``...: a Start API without its verb."""
    return start_api.removeprefix("Start")


def _longest_leaf() -> int:
    leaves = [MANIFEST_NAME]
    for op in CATALOGUE.values():
        if op.image_api:
            leaves.append(f"{op.image_api}.json")
        if op.video_start_api:
            folder = video_folder(op.video_start_api)
            leaves += [f"{folder}/{name}" for name in (_MAX_PAGE_LEAF, SUMMARY_NAME, COLLECT_STATE_NAME)]
    return max(len(leaf.encode()) for leaf in leaves)


_LONGEST_LEAF_BYTES = _longest_leaf()


def version_segment(version_id: str | None, etag: str | None) -> str:
    """``version-<id>`` for a versioned object, ``etag-<etag>`` otherwise (S3's ``null`` version too)."""
    if version_id and version_id != "null":
        text = version_id.replace("%", "%25").replace("/", "%2F")
        if len(text.encode()) > _MAX_VERSION_SEGMENT:
            text = "sha256-" + hashlib.sha256(version_id.encode()).hexdigest()
        return f"version-{text}"
    return f"etag-{(etag or 'none').strip(chr(34)) or 'none'}"


def run_segment(run: int) -> str:
    """``run-001``: zero-padded so a listing sorts runs in order."""
    if run < 1:
        raise ValueError(f"a run is counted from 1, got {run!r}")
    return f"run-{run:03d}"


@dataclass(frozen=True)
class ResultsLayout:
    """The output keys of one analysis run of one object version.

    Parameters
    ----------
    bucket, key: str
        The source object.
    version_id, etag: str | None
        Its identity: the version id, or the ETag when the bucket is unversioned.
    video: bool
        Videos go under ``async/``, images under ``sync/`` (the functions' grants follow the split).
    run: int
        The task's run (``run`` in the task table): a re-run writes a fresh prefix.

    Example
    -------
    >>> ResultsLayout("photos", "2019/a.jpg", "3HL4", None, video=False, run=2).run_prefix
    'sync/photos/2019/a.jpg/version-3HL4/run-002/'
    """

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    video: bool
    run: int

    @classmethod
    def for_task(cls, task: dict[str, Any], *, video: bool | None = None) -> ResultsLayout:
        """From a task-table item (``object_key``, ``media_type``) or a video execution's input
        (``key``; pass ``video=True``)."""
        return cls(bucket=task["bucket"], key=task.get("object_key") or task["key"],
                   version_id=task.get("version_id"), etag=task.get("etag"),
                   video=task.get("media_type") == "video" if video is None else video,
                   run=int(task.get("run") or 1))

    @property
    def mode(self) -> str:
        return ASYNC_OUTPUT_PREFIX if self.video else SYNC_OUTPUT_PREFIX

    @property
    def long_key(self) -> bool:
        """True when the readable path would pass S3's 1,024-byte key limit (see the module doc)."""
        readable = f"{self.mode}/{self.bucket}/{self.key}/{self.version_segment}/{_RUN_BUDGET}/"
        return len(readable.encode()) + _LONGEST_LEAF_BYTES > MAX_S3_KEY_BYTES

    @property
    def version_segment(self) -> str:
        return version_segment(self.version_id, self.etag)

    @property
    def key_prefix(self) -> str:
        """Everything for this key, every version and run: ``<mode>/<bucket>/<key>/``."""
        if self.long_key:
            digest = hashlib.sha256(self.key.encode()).hexdigest()
            return f"{self.mode}/{LONG_KEYS_SEGMENT}/{self.bucket}/{digest}/"
        return f"{self.mode}/{self.bucket}/{self.key}/"

    @property
    def version_prefix(self) -> str:
        """Every run of this object version."""
        return f"{self.key_prefix}{self.version_segment}/"

    @property
    def run_prefix(self) -> str:
        """This run's results: nothing else is ever written here."""
        return f"{self.version_prefix}{run_segment(self.run)}/"

    @property
    def manifest_key(self) -> str:
        return self.run_prefix + MANIFEST_NAME

    @property
    def pointer_key(self) -> str:
        """``latest.json`` of the key: which version and run hold its newest results."""
        return self.key_prefix + LATEST_POINTER_NAME

    def image_result_key(self, image_api: str) -> str:
        return f"{self.run_prefix}{image_api}.json"

    def video_folder_prefix(self, start_api: str) -> str:
        return f"{self.run_prefix}{video_folder(start_api)}/"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def source_uri(bucket: str, key: str, version_id: str | None) -> str:
    """The exact source version, as ``s3://bucket/key?versionId=...`` (the form the AWS CLI prints)."""
    uri = s3_uri(bucket, key)
    return f"{uri}?versionId={version_id}" if version_id and version_id != "null" else uri


def put_json(s3: S3Client, bucket: str, key: str, body: Any) -> str:
    """Write one JSON document (encrypted by the bucket's default key) and return its URI."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json_bytes(body),
        ContentType="application/json",
    )
    return s3_uri(bucket, key)


def json_bytes(body: Any) -> bytes:
    """The exact bytes every result file is written with (tests compare outputs byte for byte)."""
    return json.dumps(body, default=str, separators=(",", ":")).encode()


def write_manifest(
    s3: S3Client,
    bucket: str,
    *,
    task: dict[str, Any],
    layout: ResultsLayout,
    status: str,
    outputs: dict[str, str],
    errors: dict[str, dict[str, str]],
    reused: dict[str, dict[str, Any]] | None = None,
) -> str:
    """Write the manifest of one analysis run: the exact source version, the run, the outcome, every output.

    ``reused`` names the outputs copied from an identical object's result, each with its source task.
    """
    version_id = task.get("version_id")
    manifest = {
        "task_id": task["task_id"],
        "source": {
            "bucket": task["bucket"],
            "key": task["object_key"],
            "version_id": version_id,
            "etag": task.get("etag"),
            "size": task.get("size"),
            "uri": source_uri(task["bucket"], task["object_key"], version_id),
        },
        "media_type": task.get("media_type"),
        "run": layout.run,
        "results_prefix": s3_uri(bucket, layout.run_prefix),
        "long_key": layout.long_key,
        "status": status,
        "operations": list(task.get("operations", [])),
        "outputs": outputs,
        "errors": errors,
        "reused": reused or {},
        "written_at": now_iso(),
    }
    return put_json(s3, bucket, layout.manifest_key, manifest)


def write_latest_pointer(
    s3: S3Client,
    bucket: str,
    *,
    task: dict[str, Any],
    layout: ResultsLayout,
    status: str,
    manifest_uri: str,
    source_s3: S3Client | None = None,
) -> str | None:
    """Point ``latest.json`` of the key at this run, unless a newer version of the key is current.

    A run of an older version (a redrive, a slow task) must not take the pointer from the current
    version's results, so the source is asked which version is current; when it cannot say
    (deleted, no access), this run is the newest we know. Returns the pointer's URI, or None.
    """
    if not _is_current_version(source_s3 or s3, task):
        return None
    pointer = {
        "source": {"bucket": task["bucket"], "key": task["object_key"], "version_id": task.get("version_id"),
                   "etag": task.get("etag"),
                   "uri": source_uri(task["bucket"], task["object_key"], task.get("version_id"))},
        "task_id": task["task_id"],
        "run": layout.run,
        "status": status,
        "results_prefix": s3_uri(bucket, layout.run_prefix),
        "manifest": manifest_uri,
        "written_at": now_iso(),
    }
    return put_json(s3, bucket, layout.pointer_key, pointer)


def _is_current_version(s3: S3Client, task: dict[str, Any]) -> bool:
    try:
        head = s3.head_object(Bucket=task["bucket"], Key=task["object_key"])
    except (ClientError, BotoCoreError):
        return True
    version_id = task.get("version_id")
    if version_id:
        return head.get("VersionId") in (None, "null", version_id)
    return str(head.get("ETag", "")).strip('"') == str(task.get("etag") or "").strip('"')
