"""The completion report, written where AWS writes it and in its format.

``<prefix>/job-<id>/manifest.json`` lists the result files, ``<prefix>/job-<id>/results/<sha1>.csv``,
one for succeeded and one for failed tasks, with rows
``Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage`` (the S3 User Guide's
"Completion reports"); :func:`read_report` reads one back, for tests and tools.
The rows go to files on disk as tasks finish, so a job of millions of tasks never sits in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rekpipe_shared.schema import BATCH_REPORT_FORMAT as REPORT_FORMAT

if TYPE_CHECKING:
    from rekpipe.emulator.batch_operations.job import BatchJobSpec, TaskOutcome

REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
_MAX_RESULT_MESSAGE = 1024


@dataclass(frozen=True)
class ReportSpec:
    """Where the completion report goes; ``scope`` is ``AllTasks`` or ``FailedTasksOnly``."""

    bucket: str
    prefix: str = ""
    scope: str = "AllTasks"
    enabled: bool = True


class ReportFiles:
    """The report's CSV files on disk as tasks finish (a job of millions never sits in memory)."""

    def __init__(self, folder: str) -> None:
        self.paths = {"succeeded": os.path.join(folder, "succeeded.csv"), "failed": os.path.join(folder, "failed.csv")}
        self._files = {status: open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 closed in close()
                       for status, path in self.paths.items()}
        self._writers = {status: csv.writer(handle) for status, handle in self._files.items()}
        self.rows = Counter[str]()

    def add(self, outcome: TaskOutcome) -> None:
        status = "succeeded" if outcome.succeeded else "failed"
        message = outcome.message[:_MAX_RESULT_MESSAGE]
        self._writers[status].writerow([outcome.task.bucket, outcome.task.key, outcome.task.version_id or "",
                                        status, outcome.error_code, 200, message])
        self.rows[status] += 1

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def upload(self, s3: Any, spec: BatchJobSpec) -> str:
        assert spec.report is not None
        prefix = spec.report.prefix.strip("/")
        job_prefix = f"{prefix}/job-{spec.job_id}" if prefix else f"job-{spec.job_id}"
        results = []
        for status, path in self.paths.items():
            if not self.rows[status] or (status == "succeeded" and spec.report.scope == "FailedTasksOnly"):
                continue
            with open(path, "rb") as handle:
                body = handle.read()
            key = f"{job_prefix}/results/{hashlib.sha1(f'{spec.job_id}/{status}'.encode()).hexdigest()}.csv"
            s3.put_object(Bucket=spec.report.bucket, Key=key, Body=body, ContentType="text/csv")
            results.append({"TaskExecutionStatus": status, "Bucket": spec.report.bucket,
                            "MD5Checksum": hashlib.md5(body).hexdigest(), "Key": key})
        manifest = {"Format": REPORT_FORMAT, "ReportCreationDate": _now_iso(), "Results": results,
                    "ReportSchema": REPORT_SCHEMA}
        key = f"{job_prefix}/manifest.json"
        s3.put_object(Bucket=spec.report.bucket, Key=key, Body=json.dumps(manifest, indent=2).encode(),
                      ContentType="application/json")
        return key


def read_report(s3: Any, bucket: str, manifest_key: str) -> list[dict[str, str]]:
    """Every row of a completion report, as dicts keyed by the report's columns (for tests and tools)."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    columns = [name.strip() for name in manifest["ReportSchema"].split(",")]
    rows: list[dict[str, str]] = []
    for result in manifest["Results"]:
        body = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read().decode("utf-8")
        rows.extend(dict(zip(columns, row, strict=True)) for row in csv.reader(io.StringIO(body)) if row)
    return rows


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["REPORT_FORMAT", "REPORT_SCHEMA", "ReportFiles", "ReportSpec", "read_report"]
