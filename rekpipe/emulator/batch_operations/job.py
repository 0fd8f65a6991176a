"""What a job is and what it did: the job's description, each task's outcome and the job's summary."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rekpipe_shared.schema import BATCH_INVOCATION_SCHEMA_VERSION

if TYPE_CHECKING:
    from rekpipe.emulator.batch_operations.manifests import ManifestLocation, ManifestTask
    from rekpipe.emulator.batch_operations.reports import ReportSpec

SUCCEEDED, TEMPORARY_FAILURE, PERMANENT_FAILURE = "Succeeded", "TemporaryFailure", "PermanentFailure"
RESULT_CODES = (SUCCEEDED, TEMPORARY_FAILURE, PERMANENT_FAILURE)
"""A task's result codes, as the function answers them and the report records them."""


@dataclass(frozen=True)
class BatchJobSpec:
    """One Lambda-invoke job, as CreateJob describes it."""

    function_arn: str
    manifest: ManifestLocation
    report: ReportSpec | None = None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    user_arguments: dict[str, str] = field(default_factory=dict)
    invocation_schema_version: str = BATCH_INVOCATION_SCHEMA_VERSION
    role_arn: str | None = None
    """The role Batch Operations assumes to read the manifest, invoke the function and write the report."""


@dataclass(frozen=True)
class TaskOutcome:
    """The final result of one task, as the report records it."""

    task: ManifestTask
    result_code: str
    error_code: str
    message: str
    attempts: int

    @property
    def succeeded(self) -> bool:
        return self.result_code == SUCCEEDED


@dataclass
class BatchJobSummary:
    """What a job did: counts by result code, duration, and where its report is."""

    job_id: str
    status: str = "Active"
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    by_result_code: Counter[str] = field(default_factory=Counter)
    invocations: int = 0
    retries: int = 0
    duration_seconds: float = 0.0
    report_manifest_key: str | None = None
    report_bucket: str | None = None
    failure_reasons: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "status": self.status, "total": self.total, "succeeded": self.succeeded,
            "failed": self.failed, "by_result_code": dict(self.by_result_code), "invocations": self.invocations,
            "retries": self.retries, "duration_seconds": round(self.duration_seconds, 3),
            "report": f"s3://{self.report_bucket}/{self.report_manifest_key}" if self.report_manifest_key else None,
            "failure_reasons": list(self.failure_reasons),
        }

