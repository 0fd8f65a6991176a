"""S3 Batch Operations for the embedded runtime: the Lambda-invoke job that moto does not run.

moto 5.2.5's S3 Control has no jobs API. :class:`BatchOperationsRunner` runs one job as AWS does:
it streams the manifest from S3 (a CSV manifest, or an S3 Inventory ``manifest.json`` and its
gzipped CSV files), invokes the function once per task through ``lambda.invoke`` (so moto and the
in-process adapter run the real ``ingest_batch``) with the schema 2.0 (or 1.0) event, honours each
task's result code (``TemporaryFailure`` and function errors are retried with jittered backoff,
``PermanentFailure`` is final), runs tasks on a bounded pool of threads, and writes the completion
report where AWS does: ``<prefix>/job-<id>/manifest.json`` and ``results/<sha1>.csv`` with rows
``Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage``.

:class:`BatchOperationsService` serves S3 Control's ``CreateJob``, ``DescribeJob``, ``ListJobs``
and ``UpdateJobStatus`` from moto (in-process or the server of ``rekpipe local up``) by adding the
routes and handlers to moto's S3 Control response class, so ``rekpipe backfill`` and
``aws s3control create-job`` work against the emulator unchanged. Created jobs run in a background
thread of the process that serves them.

Where it differs from AWS: jobs start at once (no Preparing delay); priorities do not reorder jobs;
only the ``LambdaInvoke`` operation is supported; there is no per-job IAM role check.

Upstream: docs/upstream/s3control-batch-operations-jobs.md (still in moto at 0af643a, 2026-08-22).

Example
-------
>>> with EmbeddedRuntime(options) as runtime:  # doctest: +SKIP
...     summary = BatchOperationsRunner().run(BatchJobSpec(
...         function_arn=runtime.outputs["IngestBatchFunctionArn"],
...         manifest=ManifestLocation(bucket, "manifests/all.csv"),
...         report=ReportSpec(runtime.outputs["InventoryBucketName"], "backfill/reports")))
...     summary.succeeded, summary.failed
"""

from __future__ import annotations

import base64
import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.core.exceptions import ServiceException

from rekpipe.emulator import iam
from rekpipe.emulator.iam.enforcement import BATCH_OPERATIONS_PRINCIPAL
from rekpipe.emulator.iam.signing import acting_as
from rekpipe_shared.schema import (
    BATCH_INVOCATION_SCHEMA_VERSION,
    CSV_MANIFEST_FORMAT,
    INVENTORY_MANIFEST_FORMAT,
    MANIFEST_FORMATS,
)
from rekpipe_shared.schema import BATCH_REPORT_FORMAT as REPORT_FORMAT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LOG = logging.getLogger("rekpipe.emulator.batch")

REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
SUCCEEDED, TEMPORARY_FAILURE, PERMANENT_FAILURE = "Succeeded", "TemporaryFailure", "PermanentFailure"
RESULT_CODES = (SUCCEEDED, TEMPORARY_FAILURE, PERMANENT_FAILURE)
FUNCTION_ERROR = "LambdaFunctionError"
"""Report error code of a task whose function kept raising (AWS reports the function error's text)."""
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_ATTEMPTS = 5
FAILURE_THRESHOLD = 0.5
FAILURE_THRESHOLD_MIN_TASKS = 1000
"""AWS fails a job whose task failure rate is above 50% once at least 1,000 tasks were attempted."""
_MAX_RESULT_MESSAGE = 1024


class BatchOperationsError(Exception):
    """Base class of the emulated Batch Operations' errors."""


class ManifestError(BatchOperationsError):
    """The manifest cannot be read or has the wrong shape (the job fails, as in AWS)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


# --- what a job is ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestLocation:
    """Where the manifest is and how to read it.

    Parameters
    ----------
    bucket, key: str
        The manifest object.
    format: str
        ``S3BatchOperations_CSV_20180820`` or ``S3InventoryReport_CSV_20161130``.
    fields: tuple[str, ...]
        CSV manifest columns: ``("Bucket", "Key")`` or ``("Bucket", "Key", "VersionId")``.
    version_id: str | None
        Version of the manifest object to read.
    """

    bucket: str
    key: str
    format: str = CSV_MANIFEST_FORMAT
    fields: tuple[str, ...] = ("Bucket", "Key")
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ReportSpec:
    """Where the completion report goes; ``scope`` is ``AllTasks`` or ``FailedTasksOnly``."""

    bucket: str
    prefix: str = ""
    scope: str = "AllTasks"
    enabled: bool = True


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
class ManifestTask:
    """One manifest row: the key exactly as the manifest holds it (URL-encoded), as AWS passes it on."""

    bucket: str
    key: str
    version_id: str | None = None


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


# --- reading manifests ---------------------------------------------------------------------------
def iter_manifest(s3: Any, manifest: ManifestLocation) -> Iterator[ManifestTask]:
    """Every task of a manifest, streamed from S3 (one row in memory at a time)."""
    if manifest.format == CSV_MANIFEST_FORMAT:
        yield from _iter_csv_manifest(s3, manifest)
    elif manifest.format == INVENTORY_MANIFEST_FORMAT:
        yield from _iter_inventory(s3, manifest)
    else:
        raise ManifestError(manifest.uri, f"unsupported manifest format {manifest.format!r}; use "
                                          f"{CSV_MANIFEST_FORMAT} or {INVENTORY_MANIFEST_FORMAT}")


def _get(s3: Any, bucket: str, key: str, version_id: str | None = None) -> Any:
    from botocore.exceptions import ClientError

    args = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
    try:
        return s3.get_object(**args)["Body"]
    except ClientError as error:
        details = error.response.get("Error", {})
        message = f": {details['Message']}" if details.get("Message") else ""
        raise ManifestError(f"s3://{bucket}/{key}", f"cannot be read ({details.get('Code', '')}{message})") from None


def _iter_csv_manifest(s3: Any, manifest: ManifestLocation) -> Iterator[ManifestTask]:
    fields = tuple(manifest.fields) or ("Bucket", "Key")
    if fields[:2] != ("Bucket", "Key") or len(fields) > 3 or (len(fields) == 3 and fields[2] != "VersionId"):
        raise ManifestError(manifest.uri, f"fields must be Bucket,Key[,VersionId], not {','.join(fields)}")
    body = _get(s3, manifest.bucket, manifest.key, manifest.version_id)
    with io.TextIOWrapper(body, encoding="utf-8-sig", newline="") as text:
        for line_number, row in enumerate(csv.reader(text), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise ManifestError(manifest.uri, f"line {line_number} has no Bucket,Key: {','.join(row)[:200]!r}")
            version = row[2] if len(fields) == 3 and len(row) > 2 and row[2] not in ("", "null") else None
            yield ManifestTask(bucket=row[0], key=row[1], version_id=version)


def _iter_inventory(s3: Any, manifest: ManifestLocation) -> Iterator[ManifestTask]:
    raw = _get(s3, manifest.bucket, manifest.key, manifest.version_id).read()
    try:
        document = json.loads(raw)
        schema = [column.strip() for column in document["fileSchema"].split(",")]
        files = document["files"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ManifestError(manifest.uri, "is not an S3 Inventory manifest.json") from None
    if str(document.get("fileFormat", "")).upper() != "CSV" or "Key" not in schema or "Bucket" not in schema:
        raise ManifestError(manifest.uri, "Batch Operations reads CSV inventory reports with Bucket and Key columns")
    column = {name: index for index, name in enumerate(schema)}
    destination = str(document.get("destinationBucket", manifest.bucket)).rsplit(":", 1)[-1]
    for data_file in files:
        body = _get(s3, destination, data_file["key"])
        with gzip.GzipFile(fileobj=body) as unzipped, io.TextIOWrapper(unzipped, encoding="utf-8", newline="") as text:
            for row in csv.reader(text):
                if len(row) < len(schema):
                    continue
                version = row[column["VersionId"]] if "VersionId" in column else ""
                yield ManifestTask(bucket=row[column["Bucket"]], key=row[column["Key"]],
                                   version_id=version if version and version != "null" else None)


# --- running a job ---------------------------------------------------------------------------------
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
            report = _ReportFiles(folder)

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


class _ReportFiles:
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


# --- S3 Control's jobs API on moto ------------------------------------------------------------------
# Routes added to moto.s3control.urls.url_paths; upstream: docs/upstream/s3control-batch-operations-jobs.md
# (no jobs routes in moto at 0af643a, 2026-08-22).
_JOB_PATHS = {
    r"{0}/v20180820/jobs$": "dispatch",
    r"{0}/v20180820/jobs/(?P<id>[^/]+)$": "dispatch",
    r"{0}/v20180820/jobs/(?P<id>[^/]+)/status$": "dispatch",
    "/v20180820/jobs": "dispatch",
    "/v20180820/jobs/<id>": "dispatch",
    "/v20180820/jobs/<id>/status": "dispatch",
}
_TERMINAL_JOB_STATUSES = frozenset({"Complete", "Failed", "Cancelled"})
_active_service: BatchOperationsService | None = None
_install_lock = threading.Lock()


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
        self._added_paths: list[str] = []
        self._added_methods: list[str] = []

    # --- lifecycle --------------------------------------------------------------------------------
    def install(self) -> BatchOperationsService:
        """Add the jobs API to moto's S3 Control; call before the first S3 Control request reaches a
        moto server (its routes are fixed when it first serves the service)."""
        global _active_service
        from moto.s3control import urls
        from moto.s3control.responses import S3ControlResponse

        with _install_lock:
            if _active_service is not None:
                raise BatchOperationsError("a BatchOperationsService is already installed")
            for path in _JOB_PATHS:
                if path not in urls.url_paths:
                    urls.url_paths[path] = S3ControlResponse.dispatch
                    self._added_paths.append(path)
            for name, method in _RESPONSE_METHODS.items():
                if not hasattr(S3ControlResponse, name):
                    setattr(S3ControlResponse, name, method)
                    self._added_methods.append(name)
            _active_service = self
        return self

    def uninstall(self) -> None:
        """Cancel running jobs and remove what :meth:`install` added."""
        global _active_service
        from moto.s3control import urls
        from moto.s3control.responses import S3ControlResponse

        for job in list(self.jobs.values()):
            job.cancel.set()
        for job in list(self.jobs.values()):
            job.done.wait(timeout=30)
        with _install_lock:
            for path in self._added_paths:
                urls.url_paths.pop(path, None)
            for name in self._added_methods:
                with contextlib.suppress(AttributeError):
                    delattr(S3ControlResponse, name)
            self._added_paths, self._added_methods = [], []
            if _active_service is self:
                _active_service = None

    def __enter__(self) -> BatchOperationsService:
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
            raise _JobStatusError(f"Job {job_id} is {job.status}; it cannot move to {requested}")
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
            raise _JobNotFoundError(f"Job {job_id} does not exist")
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
        raise _BadRequestError("The emulator runs only the LambdaInvoke operation: pass Operation.LambdaInvoke")
    manifest = request.get("Manifest") or {}
    object_arn = str((manifest.get("Location") or {}).get("ObjectArn", ""))
    if ":::" not in object_arn or "/" not in object_arn.split(":::", 1)[1]:
        raise _BadRequestError(f"Manifest.Location.ObjectArn must be arn:aws:s3:::bucket/key, not {object_arn!r}")
    bucket, key = object_arn.split(":::", 1)[1].split("/", 1)
    spec = manifest.get("Spec") or {}
    location = ManifestLocation(bucket=bucket, key=key, format=str(spec.get("Format") or CSV_MANIFEST_FORMAT),
                                fields=tuple(spec.get("Fields") or ("Bucket", "Key")),
                                version_id=(manifest.get("Location") or {}).get("ObjectVersionId"))
    if location.format not in MANIFEST_FORMATS:
        raise _BadRequestError(f"Unsupported manifest format {location.format}")
    report = None
    report_request = request.get("Report") or {}
    if report_request.get("Enabled"):
        report_bucket = str(report_request.get("Bucket", "")).rsplit(":::", 1)[-1]
        if not report_bucket:
            raise _BadRequestError("Report.Bucket is required when the report is enabled")
        report = ReportSpec(bucket=report_bucket, prefix=str(report_request.get("Prefix") or ""),
                            scope=str(report_request.get("ReportScope") or "AllTasks"))
    return BatchJobSpec(function_arn=str(invoke["FunctionArn"]), manifest=location, report=report,
                        user_arguments={str(k): str(v) for k, v in (invoke.get("UserArguments") or {}).items()},
                        invocation_schema_version=str(invoke.get("InvocationSchemaVersion") or "1.0"),
                        role_arn=str(request["RoleArn"]) if request.get("RoleArn") else None)


def _role_credentials(spec: BatchJobSpec) -> Any:
    """The job role's session when the runtime enforces IAM (None: act as the caller, as before)."""
    enforcement = iam.active()
    if enforcement is None:
        return None
    if not spec.role_arn:
        raise PermissionError("CreateJob needs a RoleArn: S3 Batch Operations acts only through the job's role")
    return enforcement.service_session(spec.role_arn, BATCH_OPERATIONS_PRINCIPAL,
                                       session_name=f"s3-batch-{spec.job_id[:8]}").credentials


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


class _JobNotFoundError(ServiceException):
    code = "NotFoundException"


class _BadRequestError(ServiceException):
    code = "BadRequestException"


class _JobStatusError(ServiceException):
    code = "JobStatusException"


def _service() -> BatchOperationsService:
    if _active_service is None:
        raise _BadRequestError("S3 Batch Operations is not enabled in this emulator")
    return _active_service


def _create_job(self: Any) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"JobId": _service().create_job(dict(self.params))})


def _describe_job(self: Any) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"Job": _service().describe_job(str(self._get_param("JobId") or self.uri_match["id"]))})


def _list_jobs(self: Any) -> Any:
    from moto.core.responses import ActionResult

    statuses = self._get_param("JobStatuses") or None
    return ActionResult({"Jobs": _service().list_jobs(statuses)})


def _update_job_status(self: Any) -> Any:
    from moto.core.responses import ActionResult

    job_id = str(self._get_param("JobId") or self.uri_match["id"])
    return ActionResult(_service().update_job_status(job_id, str(self._get_param("RequestedJobStatus")),
                                                     self._get_param("StatusUpdateReason")))


_RESPONSE_METHODS = {"create_job": _create_job, "describe_job": _describe_job, "list_jobs": _list_jobs,
                     "update_job_status": _update_job_status}


def install(runner: BatchOperationsRunner | None = None) -> BatchOperationsService:
    """Serve S3 Control's jobs API from moto with the emulator's runner; ``uninstall()`` the result."""
    return BatchOperationsService(runner).install()


__all__ = [
    "BatchJobSpec",
    "BatchJobSummary",
    "BatchOperationsError",
    "BatchOperationsRunner",
    "BatchOperationsService",
    "ManifestError",
    "ManifestLocation",
    "ManifestTask",
    "ReportSpec",
    "TaskOutcome",
    "install",
    "iter_manifest",
    "read_report",
    "spec_from_request",
]
