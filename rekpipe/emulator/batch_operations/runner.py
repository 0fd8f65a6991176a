"""The runner: one Lambda-invoke job run as S3 Batch Operations runs it, acting with the job's role.

It streams the manifest (:mod:`.manifests`), invokes the function once per task through
``lambda.invoke`` (so moto and the in-process adapter run the real ``ingest_batch``) with the schema
2.0 (or 1.0) event, honours each task's result code (``TemporaryFailure`` and function errors are
retried with jittered backoff, ``PermanentFailure`` is final), runs tasks on a bounded pool of
threads, and writes the completion report (:mod:`.reports`). Under IAM enforcement every call is made
with the credentials of the job's ``RoleArn``, as AWS makes them.

Where it differs from AWS: a job starts at once (no Preparing delay), and only ``LambdaInvoke`` runs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rekpipe.emulator import iam
from rekpipe.emulator.batch_operations.exceptions import ManifestError
from rekpipe.emulator.batch_operations.job import (
    PERMANENT_FAILURE,
    RESULT_CODES,
    SUCCEEDED,
    TEMPORARY_FAILURE,
    BatchJobSummary,
    TaskOutcome,
)
from rekpipe.emulator.batch_operations.manifests import iter_manifest
from rekpipe.emulator.batch_operations.reports import ReportFiles
from rekpipe.emulator.iam.enforcement import BATCH_OPERATIONS_PRINCIPAL
from rekpipe.emulator.iam.signing import acting_as
from rekpipe_shared.schema import BATCH_INVOCATION_SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.emulator.batch_operations.job import BatchJobSpec
    from rekpipe.emulator.batch_operations.manifests import ManifestTask

LOG = logging.getLogger("rekpipe.emulator.batch")

FUNCTION_ERROR = "LambdaFunctionError"
"""Report error code of a task whose function kept raising (AWS reports the function error's text)."""
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_ATTEMPTS = 5
FAILURE_THRESHOLD = 0.5
FAILURE_THRESHOLD_MIN_TASKS = 1000
"""AWS fails a job whose task failure rate is above 50% once at least 1,000 tasks were attempted."""


class BatchOperationsRunner:
    """Runs Lambda-invoke jobs like S3 Batch Operations.

    Parameters
    ----------
    concurrency: int
        Tasks invoked at once (threads).
    max_attempts: int
        Invocations of one task before a ``TemporaryFailure`` (or a function error) becomes final.
    backoff_base, backoff_cap: float
        Full-jitter exponential backoff between attempts, in seconds.
    lambda_client, s3_client: Any
        Clients to use; default ``boto3`` clients, which reach moto in-process or, with
        ``AWS_ENDPOINT_URL`` set, the server of ``rekpipe local up``.
    """

    def __init__(self, *, concurrency: int = DEFAULT_CONCURRENCY, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 backoff_base: float = 0.05, backoff_cap: float = 2.0, lambda_client: Any = None,
                 s3_client: Any = None, region: str | None = None) -> None:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.region = region
        self._lambda = lambda_client
        self._s3 = s3_client

    def _clients(self) -> tuple[Any, Any]:
        import boto3
        from botocore.config import Config

        region = self.region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=self.concurrency + 4,
                        read_timeout=900)
        lam = self._lambda or boto3.client("lambda", region_name=region, config=config)
        s3 = self._s3 or boto3.client("s3", region_name=region, config=config)
        return lam, s3

    def run(self, spec: BatchJobSpec, *, on_progress: Callable[[BatchJobSummary], None] | None = None,
            cancel: threading.Event | None = None) -> BatchJobSummary:
        """Run the job to the end and write its report.

        Parameters
        ----------
        spec: BatchJobSpec
            The job.
        on_progress: Callable[[BatchJobSummary], None] | None
            Called after each task with the running counts (from worker threads).
        cancel: threading.Event | None
            Set to stop submitting tasks (the job ends ``Cancelled``).

        Returns
        -------
        BatchJobSummary
            ``status`` is ``Complete``, ``Failed`` (unreadable manifest, or the failure threshold) or
            ``Cancelled``.
        """
        lam, s3 = self._clients()
        summary = BatchJobSummary(job_id=spec.job_id, report_bucket=spec.report.bucket if spec.report else None)
        started = time.monotonic()
        try:
            credentials = _role_credentials(spec)
        except PermissionError as error:  # the role does not trust batchoperations.s3.amazonaws.com
            summary.failure_reasons.append({"FailureCode": "AccessDenied", "FailureReason": str(error)})
            summary.status = "Failed"
            summary.duration_seconds = time.monotonic() - started
            return summary
        with acting_as(credentials):
            return self._run_as_role(spec, lam, s3, summary, started, credentials, on_progress, cancel)

    def _run_as_role(self, spec: BatchJobSpec, lam: Any, s3: Any, summary: BatchJobSummary, started: float,
                     credentials: Any, on_progress: Callable[[BatchJobSummary], None] | None,
                     cancel: threading.Event | None) -> BatchJobSummary:
        lock = threading.Lock()
        stop = cancel or threading.Event()
        in_flight = threading.BoundedSemaphore(self.concurrency * 2)
        with tempfile.TemporaryDirectory(prefix="rekpipe-batch-") as folder:
            report = ReportFiles(folder)

            def finish(outcome: TaskOutcome, attempts_used: int) -> None:
                with lock:
                    summary.total += 1
                    summary.invocations += attempts_used
                    summary.retries += attempts_used - 1
                    summary.by_result_code[outcome.result_code] += 1
                    if outcome.succeeded:
                        summary.succeeded += 1
                    else:
                        summary.failed += 1
                    report.add(outcome)
                    over_threshold = (summary.total >= FAILURE_THRESHOLD_MIN_TASKS
                                      and summary.failed / summary.total > FAILURE_THRESHOLD)
                if over_threshold and not stop.is_set():
                    summary.failure_reasons.append({
                        "FailureCode": "TaskFailureThresholdExceeded",
                        "FailureReason": f"More than {FAILURE_THRESHOLD:.0%} of the first {summary.total} "
                                         "tasks failed"})
                    stop.set()
                if on_progress:
                    on_progress(summary)

            def work(index: int, task: ManifestTask) -> None:
                try:
                    with acting_as(credentials):  # worker threads do not inherit the job's identity
                        outcome = self._run_task(lam, spec, index, task)
                except Exception as error:  # a runner bug must not lose the task from the report
                    LOG.exception("task %s of job %s failed in the runner", index, spec.job_id)
                    outcome = TaskOutcome(task, PERMANENT_FAILURE, PERMANENT_FAILURE,
                                          f"Emulator error: {error!r}", 1)
                try:
                    finish(outcome, outcome.attempts)
                finally:
                    in_flight.release()

            try:
                with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="s3-batch") as pool:
                    for index, task in enumerate(iter_manifest(s3, spec.manifest)):
                        if stop.is_set():
                            break
                        in_flight.acquire()
                        pool.submit(work, index, task)
            except ManifestError as error:
                summary.failure_reasons.append({"FailureCode": "ManifestError", "FailureReason": str(error)})
            report.close()
            if summary.failure_reasons:
                summary.status = "Failed"
            elif cancel is not None and cancel.is_set():
                summary.status = "Cancelled"
            else:
                summary.status = "Complete"
            if spec.report and spec.report.enabled:
                try:
                    summary.report_manifest_key = report.upload(s3, spec)
                except ClientError as error:
                    details = error.response.get("Error", {})
                    summary.failure_reasons.append({
                        "FailureCode": "ReportNotWritten",
                        "FailureReason": f"Writing the completion report to s3://{spec.report.bucket}/"
                                         f"{spec.report.prefix} failed: {details.get('Code')}: {details.get('Message')}"})
                    summary.status = "Failed"
        summary.duration_seconds = time.monotonic() - started
        return summary

    def _run_task(self, lam: Any, spec: BatchJobSpec, index: int, task: ManifestTask) -> TaskOutcome:
        task_id = base64.urlsafe_b64encode(f"{spec.job_id}:{index}".encode()).decode().rstrip("=")
        attempt = 0
        while True:
            attempt += 1
            code, error_code, message = self._invoke(lam, spec, task_id, task)
            if code != TEMPORARY_FAILURE or attempt >= self.max_attempts:
                return TaskOutcome(task, code, "" if code == SUCCEEDED else error_code, message, attempt)
            time.sleep(random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))))

    def _invoke(self, lam: Any, spec: BatchJobSpec, task_id: str, task: ManifestTask) -> tuple[str, str, str]:
        """One invocation: (result code, report error code, message)."""
        from botocore.exceptions import BotoCoreError, ClientError

        invocation_id = base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()
        event = _event(spec, invocation_id, task_id, task)
        try:
            response = lam.invoke(FunctionName=spec.function_arn, Payload=json.dumps(event).encode())
            raw = response["Payload"].read()
        except ClientError as error:
            details = error.response.get("Error", {})
            code = str(details.get("Code", ""))
            message = f"Lambda invoke failed: {code}: {details.get('Message', '')}"
            if code in ("ResourceNotFoundException", "AccessDeniedException", "InvalidParameterValueException"):
                return PERMANENT_FAILURE, code, message
            return TEMPORARY_FAILURE, code or TEMPORARY_FAILURE, message
        except BotoCoreError as error:
            return TEMPORARY_FAILURE, type(error).__name__, f"Lambda invoke failed: {error}"
        text = raw.decode("utf-8", errors="replace")
        if response.get("FunctionError"):
            return TEMPORARY_FAILURE, FUNCTION_ERROR, f"Lambda returned function error: {text}"
        try:
            payload = json.loads(text)
            results = payload["results"]
            treat_missing = payload.get("treatMissingKeysAs") or PERMANENT_FAILURE
        except (ValueError, KeyError, TypeError):
            return PERMANENT_FAILURE, PERMANENT_FAILURE, f"Lambda returned an invalid response: {text[:200]}"
        result = next((r for r in results if isinstance(r, dict) and r.get("taskId") == task_id), None)
        if result is None:
            return treat_missing, treat_missing, "Lambda response had no result for this task"
        code = str(result.get("resultCode") or treat_missing)
        if code not in RESULT_CODES:
            return PERMANENT_FAILURE, PERMANENT_FAILURE, f"Lambda returned an invalid resultCode {code!r}"
        return code, code, str(result.get("resultString") or "")


def _event(spec: BatchJobSpec, invocation_id: str, task_id: str, task: ManifestTask) -> dict[str, Any]:
    if spec.invocation_schema_version == "1.0":
        return {"invocationSchemaVersion": "1.0", "invocationId": invocation_id, "job": {"id": spec.job_id},
                "tasks": [{"taskId": task_id, "s3Key": task.key, "s3VersionId": task.version_id,
                           "s3BucketArn": f"arn:aws:s3:::{task.bucket}"}]}
    return {
        "invocationSchemaVersion": BATCH_INVOCATION_SCHEMA_VERSION,
        "invocationId": invocation_id,
        "job": {"id": spec.job_id, "userArguments": dict(spec.user_arguments)},
        "tasks": [{"taskId": task_id, "s3Bucket": task.bucket, "s3Key": task.key, "s3VersionId": task.version_id}],
    }


def _role_credentials(spec: BatchJobSpec) -> Any:
    """The job role's session when the runtime enforces IAM (None: act as the caller, as before)."""
    enforcement = iam.active()
    if enforcement is None:
        return None
    if not spec.role_arn:
        raise PermissionError("CreateJob needs a RoleArn: S3 Batch Operations acts only through the job's role")
    return enforcement.service_session(spec.role_arn, BATCH_OPERATIONS_PRINCIPAL,
                                       session_name=f"s3-batch-{spec.job_id[:8]}").credentials


__all__ = ["FUNCTION_ERROR", "BatchOperationsRunner"]
