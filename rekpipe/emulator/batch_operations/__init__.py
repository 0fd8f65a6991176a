"""S3 Batch Operations for the embedded runtime: the Lambda-invoke job that moto does not run.

One concept per module:

- :mod:`.manifests`: reading a job's manifest (CSV, or an S3 Inventory ``manifest.json`` and its
  gzipped CSV files, parsed by :mod:`rekpipe.inventory`, which the CLI's backfill plan shares);
- :mod:`.job`: what a job is (:class:`BatchJobSpec`) and what it did (:class:`TaskOutcome`,
  :class:`BatchJobSummary`);
- :mod:`.runner`: :class:`BatchOperationsRunner` runs one job as AWS does, with the job role's
  credentials, invoking the function once per task and retrying temporary failures;
- :mod:`.reports`: the completion report, written where and as AWS writes it;
- :mod:`.service`: :class:`BatchOperationsService`, S3 Control's ``CreateJob``, ``DescribeJob``,
  ``ListJobs`` and ``UpdateJobStatus``, each created job run by the runner in a thread;
- :mod:`.moto_routes`: the routes moto lacks for that API, so ``rekpipe backfill`` and
  ``aws s3control create-job`` run against the emulator unchanged (the module says why it stays);
- :mod:`.exceptions`: the errors.

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

from rekpipe.emulator.batch_operations.exceptions import BatchOperationsError, ManifestError
from rekpipe.emulator.batch_operations.job import (
    PERMANENT_FAILURE,
    RESULT_CODES,
    SUCCEEDED,
    TEMPORARY_FAILURE,
    BatchJobSpec,
    BatchJobSummary,
    TaskOutcome,
)
from rekpipe.emulator.batch_operations.manifests import ManifestLocation, ManifestTask, iter_manifest
from rekpipe.emulator.batch_operations.reports import REPORT_FORMAT, REPORT_SCHEMA, ReportSpec, read_report
from rekpipe.emulator.batch_operations.runner import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    FAILURE_THRESHOLD,
    FAILURE_THRESHOLD_MIN_TASKS,
    FUNCTION_ERROR,
    BatchOperationsRunner,
)
from rekpipe.emulator.batch_operations.service import BatchOperationsService, install, spec_from_request
from rekpipe_shared.schema import CSV_MANIFEST_FORMAT, INVENTORY_MANIFEST_FORMAT

__all__ = [
    "CSV_MANIFEST_FORMAT",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "FAILURE_THRESHOLD",
    "FAILURE_THRESHOLD_MIN_TASKS",
    "FUNCTION_ERROR",
    "INVENTORY_MANIFEST_FORMAT",
    "PERMANENT_FAILURE",
    "REPORT_FORMAT",
    "REPORT_SCHEMA",
    "RESULT_CODES",
    "SUCCEEDED",
    "TEMPORARY_FAILURE",
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
