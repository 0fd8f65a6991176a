"""S3 Control's jobs API (CreateJob, DescribeJob, ListJobs, UpdateJobStatus), each job run by the runner.

:class:`BatchOperationsService` keeps the jobs and their statuses as S3 Control reports them, and runs
each created job with a :class:`~.runner.BatchOperationsRunner` in a background thread of the process
that serves it. :meth:`BatchOperationsService.install` serves it from moto's S3 Control through the
routes of :mod:`.moto_routes` (moto has none for jobs), so ``rekpipe backfill`` and
``aws s3control create-job`` work against the emulator unchanged.

Where it differs from AWS: jobs start at once (no Preparing delay); priorities do not reorder jobs;
only the ``LambdaInvoke`` operation is supported.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rekpipe.emulator.batch_operations import moto_routes
from rekpipe.emulator.batch_operations.exceptions import BadRequestError, JobNotFoundError, JobStatusError
from rekpipe.emulator.batch_operations.job import BatchJobSpec, BatchJobSummary
from rekpipe.emulator.batch_operations.manifests import ManifestLocation
from rekpipe.emulator.batch_operations.reports import ReportSpec
from rekpipe.emulator.batch_operations.runner import BatchOperationsRunner
from rekpipe_shared.schema import CSV_MANIFEST_FORMAT, MANIFEST_FORMATS

LOG = logging.getLogger("rekpipe.emulator.batch")

_TERMINAL_JOB_STATUSES = frozenset({"Complete", "Failed", "Cancelled"})


@dataclass
class _Job:
    request: dict[str, Any]
    spec: BatchJobSpec
    status: str
    created: datetime
    priority: int
    summary: BatchJobSummary
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    terminated: datetime | None = None
    status_reason: str | None = None


class BatchOperationsService:
    """S3 Control's jobs API for moto, each job run by a :class:`BatchOperationsRunner` in a thread.

    Parameters
    ----------
    runner: BatchOperationsRunner | None
        Runs the jobs (default settings if None).

    Example
    -------
    >>> service = BatchOperationsService().install()  # doctest: +SKIP
    >>> job_id = boto3.client("s3control").create_job(...)["JobId"]
    >>> service.wait(job_id).status
    'Complete'
    """

    def __init__(self, runner: BatchOperationsRunner | None = None) -> None:
        self.runner = runner or BatchOperationsRunner()
        self.jobs: dict[str, _Job] = {}
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------------------
    def install(self) -> BatchOperationsService:
        """Serve the jobs API from moto's S3 Control; call before the first S3 Control request reaches a
        moto server (its routes are fixed when it first serves the service)."""
        moto_routes.add_jobs_api(self)
        return self

    def uninstall(self) -> None:
        """Cancel running jobs and stop serving the jobs API (remove what :meth:`install` added)."""
        for job in list(self.jobs.values()):
            job.cancel.set()
        for job in list(self.jobs.values()):
            job.done.wait(timeout=30)
        moto_routes.remove_jobs_api(self)
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # --- the API ------------------------------------------------------------------------------------
    def create_job(self, request: dict[str, Any]) -> str:
        """CreateJob: validate, remember, and start the job unless it needs confirmation."""
        token = str(request.get("ClientRequestToken") or "")
        with self._lock:
            if token and token in self._tokens:
                return self._tokens[token]
        spec = spec_from_request(request)
        job = _Job(request=request, spec=spec, created=datetime.now(UTC), priority=int(request.get("Priority", 0)),
                   status="Suspended" if request.get("ConfirmationRequired") else "New",
                   summary=BatchJobSummary(job_id=spec.job_id))
        with self._lock:
            if token and token in self._tokens:  # a concurrent retry won
                return self._tokens[token]
            self.jobs[spec.job_id] = job
            if token:
                self._tokens[token] = spec.job_id
        if job.status == "New":
            self._start(job)
        return spec.job_id

    def describe_job(self, job_id: str) -> dict[str, Any]:
        """DescribeJob's ``Job``."""
        job = self._job(job_id)
        request = job.request
        descriptor: dict[str, Any] = {
            "JobId": job_id,
            "ConfirmationRequired": bool(request.get("ConfirmationRequired")),
            "Description": request.get("Description"),
            "JobArn": f"arn:aws:s3:{_region()}:{request.get('AccountId')}:job/{job_id}",
            "Status": job.status,
            "Manifest": request.get("Manifest"),
            "Operation": request.get("Operation"),
            "Priority": job.priority,
            "ProgressSummary": self._progress(job),
            "Report": request.get("Report"),
            "CreationTime": job.created,
            "RoleArn": request.get("RoleArn"),
        }
        if job.terminated:
            descriptor["TerminationDate"] = job.terminated
        if job.status_reason:
            descriptor["StatusUpdateReason"] = job.status_reason
        if job.summary.failure_reasons:
            descriptor["FailureReasons"] = list(job.summary.failure_reasons)
        return {key: value for key, value in descriptor.items() if value is not None}

    def list_jobs(self, statuses: list[str] | None = None) -> list[dict[str, Any]]:
        """ListJobs' ``Jobs``, newest first."""
        jobs = sorted(self.jobs.items(), key=lambda item: item[1].created, reverse=True)
        listed = []
        for job_id, job in jobs:
            if statuses and job.status not in statuses:
                continue
            entry: dict[str, Any] = {"JobId": job_id, "Description": job.request.get("Description"),
                                     "Operation": "LambdaInvoke", "Priority": job.priority, "Status": job.status,
                                     "CreationTime": job.created, "ProgressSummary": self._progress(job)}
            if job.terminated:
                entry["TerminationDate"] = job.terminated
            listed.append({key: value for key, value in entry.items() if value is not None})
        return listed

    def update_job_status(self, job_id: str, requested: str, reason: str | None = None) -> dict[str, Any]:
        """UpdateJobStatus: confirm a Suspended job (``Ready``) or cancel one (``Cancelled``)."""
        job = self._job(job_id)
        if requested == "Ready" and job.status == "Suspended":
            job.status_reason = reason
            self._start(job)
        elif requested == "Cancelled" and job.status not in _TERMINAL_JOB_STATUSES:
            job.status_reason = reason
            job.cancel.set()
            if job.status == "Suspended":
                self._end(job, "Cancelled")
            else:
                job.status = "Cancelling"
        else:
            raise JobStatusError(f"Job {job_id} is {job.status}; it cannot move to {requested}")
        return {"JobId": job_id, "Status": job.status, "StatusUpdateReason": reason}

    def wait(self, job_id: str, timeout: float = 300.0) -> BatchJobSummary:
        """Block until a job ends; returns its summary (raises TimeoutError)."""
        job = self._job(job_id)
        if not job.done.wait(timeout):
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
        return job.summary

    # --- internals ------------------------------------------------------------------------------------
    def _job(self, job_id: str) -> _Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"Job {job_id} does not exist")
        return job

    def _progress(self, job: _Job) -> dict[str, Any]:
        summary = job.summary
        elapsed = summary.duration_seconds if job.status in _TERMINAL_JOB_STATUSES else (
            (datetime.now(UTC) - job.created).total_seconds())
        return {"TotalNumberOfTasks": summary.total, "NumberOfTasksSucceeded": summary.succeeded,
                "NumberOfTasksFailed": summary.failed, "Timers": {"ElapsedTimeInActiveSeconds": int(elapsed)}}

    def _start(self, job: _Job) -> None:
        job.status = "Active"

        def run() -> None:
            try:
                summary = self.runner.run(job.spec, cancel=job.cancel,
                                          on_progress=lambda progress: setattr(job, "summary", progress))
            except Exception as error:
                LOG.exception("S3 Batch Operations job %s failed", job.spec.job_id)
                job.summary.failure_reasons.append({"FailureCode": "InternalError", "FailureReason": repr(error)})
                self._end(job, "Failed")
                return
            job.summary = summary
            self._end(job, summary.status)

        threading.Thread(target=run, name=f"s3-batch-job-{job.spec.job_id[:8]}", daemon=True).start()

    def _end(self, job: _Job, status: str) -> None:
        job.status = status
        job.terminated = datetime.now(UTC)
        job.done.set()


def spec_from_request(request: dict[str, Any]) -> BatchJobSpec:
    """A runnable job from a CreateJob request (as botocore sends it), or a BadRequest error."""
    invoke = (request.get("Operation") or {}).get("LambdaInvoke")
    if not invoke or not invoke.get("FunctionArn"):
        raise BadRequestError("The emulator runs only the LambdaInvoke operation: pass Operation.LambdaInvoke")
    manifest = request.get("Manifest") or {}
    object_arn = str((manifest.get("Location") or {}).get("ObjectArn", ""))
    if ":::" not in object_arn or "/" not in object_arn.split(":::", 1)[1]:
        raise BadRequestError(f"Manifest.Location.ObjectArn must be arn:aws:s3:::bucket/key, not {object_arn!r}")
    bucket, key = object_arn.split(":::", 1)[1].split("/", 1)
    spec = manifest.get("Spec") or {}
    location = ManifestLocation(bucket=bucket, key=key, format=str(spec.get("Format") or CSV_MANIFEST_FORMAT),
                                fields=tuple(spec.get("Fields") or ("Bucket", "Key")),
                                version_id=(manifest.get("Location") or {}).get("ObjectVersionId"))
    if location.format not in MANIFEST_FORMATS:
        raise BadRequestError(f"Unsupported manifest format {location.format}")
    report = None
    report_request = request.get("Report") or {}
    if report_request.get("Enabled"):
        report_bucket = str(report_request.get("Bucket", "")).rsplit(":::", 1)[-1]
        if not report_bucket:
            raise BadRequestError("Report.Bucket is required when the report is enabled")
        report = ReportSpec(bucket=report_bucket, prefix=str(report_request.get("Prefix") or ""),
                            scope=str(report_request.get("ReportScope") or "AllTasks"))
    return BatchJobSpec(function_arn=str(invoke["FunctionArn"]), manifest=location, report=report,
                        user_arguments={str(k): str(v) for k, v in (invoke.get("UserArguments") or {}).items()},
                        invocation_schema_version=str(invoke.get("InvocationSchemaVersion") or "1.0"),
                        role_arn=str(request["RoleArn"]) if request.get("RoleArn") else None)


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


def install(runner: BatchOperationsRunner | None = None) -> BatchOperationsService:
    """Serve S3 Control's jobs API from moto with the emulator's runner; ``uninstall()`` the result."""
    return BatchOperationsService(runner).install()


__all__ = ["BatchOperationsService", "install", "spec_from_request"]
