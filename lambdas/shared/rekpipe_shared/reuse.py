"""Reusing a stored result for identical bytes: plan, find or claim, copy, record.

The handlers call this module, and it calls the index (``rekpipe_shared.result_index``) and S3.
A reused output is copied with CopyObject into the task's own output layout, so every task still
has its own files, byte for byte the first analysis's, and nothing reads another task's prefix
later. The switch is the ``reuse_results`` setting; a task re-queued with ``force_analysis``
(``rekpipe redrive --force``) is analysed again and its result replaces the indexed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rekpipe_shared.content_identity import read_identities
from rekpipe_shared.outputs import s3_uri
from rekpipe_shared.result_index import request_options, reuse_key
from rekpipe_shared.tasks import WAITING_FOR_ATTR

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from rekpipe_shared.content_identity import ContentIdentity
    from rekpipe_shared.operations import Operation
    from rekpipe_shared.result_index import Claim, IndexedResult, ResultIndex
    from rekpipe_shared.settings import PipelineSettings

FORCE_ATTR = "force_analysis"
"""Set on a task by ``rekpipe redrive --force``: analyse even when a result exists."""
IDENTITY_ATTR = "content_identity"
"""The identities a task was matched under (tokens), kept on the task for the video outcome."""
_SKIPPED_LEAVES = ("_collect_state.json",)


@dataclass(frozen=True)
class ReusePlan:
    """The keys one operation of one task is looked up and recorded under.

    Parameters
    ----------
    api: str
        The image API, or the video Start* API.
    keys: tuple[str, ...]
        One per identity, the preferred identity's first (the one a lead is claimed under).
    identities: tuple[ContentIdentity, ...]
    options: dict[str, Any]
        The request options in the key.
    forced: bool
        Analyse anyway, then replace the indexed result.
    """

    api: str
    keys: tuple[str, ...]
    identities: tuple[ContentIdentity, ...]
    options: dict[str, Any]
    forced: bool


class ResultReuse:
    """Reuse for one function: the index, the output bucket and the settings it was deployed with.

    Parameters
    ----------
    index: ResultIndex | None
        None when reuse is switched off (no table): every call then plans nothing.
    s3: S3Client
    output_bucket: str
    settings: PipelineSettings
    """

    def __init__(self, index: ResultIndex | None, s3: S3Client, output_bucket: str,
                 settings: PipelineSettings) -> None:
        self.index = index if settings.reuse_results else None
        self.s3 = s3
        self.output_bucket = output_bucket
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return self.index is not None

    def identities(self, task: dict[str, Any]) -> tuple[ContentIdentity, ...]:
        """The task's content identities, read once with HeadObject ``ChecksumMode=ENABLED``."""
        if not self.enabled:
            return ()
        return read_identities(self.s3, task["bucket"], task["object_key"], task.get("version_id"))

    def plan(self, task: dict[str, Any], op: Operation, identities: tuple[ContentIdentity, ...], *,
             video: bool) -> ReusePlan | None:
        """The plan for one operation, or None when reuse is off or the object has no identity."""
        if not self.enabled or not identities:
            return None
        api = op.video_start_api if video else op.image_api
        assert api is not None
        options = request_options(op, self.settings, video=video)
        keys = tuple(reuse_key(api, identity, options) for identity in identities)
        return ReusePlan(api=api, keys=keys, identities=identities, options=options,
                         forced=bool(task.get(FORCE_ATTR)))

    def find(self, plan: ReusePlan) -> IndexedResult | None:
        """A stored result for this plan, unless the task is forced."""
        assert self.index is not None
        return None if plan.forced else self.index.find(plan.keys)

    def claim(self, plan: ReusePlan, task_id: str, lease_seconds: int) -> Claim:
        assert self.index is not None
        return self.index.claim(plan.keys[0], task_id, lease_seconds=lease_seconds, identity=plan.identities[0],
                                api=plan.api)

    def record(self, plan: ReusePlan, task_id: str, result_uri: str, model_version: str | None) -> list[str]:
        """Index a finished result; returns the waiters of the lead it replaced (to wake)."""
        assert self.index is not None
        return self.index.record(plan.keys, task_id=task_id, api=plan.api, result_uri=result_uri,
                          model_version=model_version, options=plan.options, identities=plan.identities)

    def withdraw(self, plan: ReusePlan, task_id: str) -> list[str]:
        """Drop this task's lead; returns its waiters (to wake)."""
        assert self.index is not None
        return self.index.withdraw(plan.keys[0], task_id)

    def add_waiter(self, plan: ReusePlan, leader_task_id: str, task_id: str, run: int) -> bool:
        """Wait on a live lead (see ``ResultIndex.add_waiter``)."""
        assert self.index is not None
        return self.index.add_waiter(plan.keys[0], leader_task_id, waiter_entry(task_id, run))

    def copy_file(self, plan: ReusePlan, found: IndexedResult, dest_key: str) -> str | None:
        """CopyObject one stored result to ``dest_key``; None (and the entry dropped) when it is gone."""
        bucket, key = _split(found.result_uri)
        try:
            self.s3.copy_object(Bucket=self.output_bucket, Key=dest_key, CopySource={"Bucket": bucket, "Key": key})
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                raise
            self._forget(plan, found)
            return None
        return s3_uri(self.output_bucket, dest_key)

    def copy_folder(self, plan: ReusePlan, found: IndexedResult, dest_prefix: str) -> list[str]:
        """CopyObject every file of a stored video result (pages and summary) under ``dest_prefix``."""
        bucket, prefix = _split(found.result_uri)
        copied = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                leaf = item["Key"][len(prefix):]
                if leaf in _SKIPPED_LEAVES:
                    continue
                self.s3.copy_object(Bucket=self.output_bucket, Key=dest_prefix + leaf,
                                    CopySource={"Bucket": bucket, "Key": item["Key"]})
                copied.append(leaf)
        if not copied:
            self._forget(plan, found)
        return copied

    def _forget(self, plan: ReusePlan, found: IndexedResult) -> None:
        assert self.index is not None
        for key in plan.keys:
            self.index.forget(key, found.result_uri)


WAITING_ATTR = WAITING_FOR_ATTR
"""On a QUEUED video task parked behind an identical video's analysis: ``{"reuse_key", "leader_task_id",
"api"}``, so ``rekpipe_shared.stuck`` can tell a live wait from a lost one."""


def waiter_entry(task_id: str, run: int) -> str:
    return f"{task_id}:{run}"


def wake_waiters(sqs: Any, queue_url: str, waiters: list[str]) -> int:
    """Send each waiter's video queue message again, so it reuses the result or leads its own analysis.

    A duplicate is harmless (the consumer's claim makes it a no-op); a lost one is found by the
    stuck-task finder (``rekpipe_shared.stuck``).
    """
    for waiter in waiters:
        task_id, _, run = waiter.rpartition(":")
        sqs.send_message(QueueUrl=queue_url,
                         MessageBody=json.dumps({"task_id": task_id, "run": int(run), "media_type": "video",
                                                 "woken_by": "result-reuse"}))
    return len(waiters)


def reused_entry(found: IndexedResult) -> dict[str, Any]:
    """What a task and its manifest record about a reused output."""
    return {"source_task_id": found.source_task_id, "source_uri": found.result_uri,
            "model_version": found.model_version}


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


__all__ = ["FORCE_ATTR", "IDENTITY_ATTR", "WAITING_ATTR", "ResultReuse", "ReusePlan", "reused_entry", "waiter_entry",
           "wake_waiters"]
