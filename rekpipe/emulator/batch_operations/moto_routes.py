"""The S3 Control jobs routes that moto lacks, added to moto at run time and served by our service.

Why this patch exists: moto 5.2.5 has no S3 Batch Operations jobs API. ``moto/s3control/urls.py``
routes access points, public access blocks, multi-region access points, Storage Lens and tags only,
so ``CreateJob`` (``POST /v20180820/jobs``) gets a 404. The product's ``rekpipe backfill`` creates its
job with that very call, through boto3 (``rekpipe/cli/backfill.py``, ``_submit``). Adding the routes
to moto lets the same code path run locally, unchanged: in-process (the e2e test
``tests/e2e/test_backfill_runner.py::test_batch_operations_service_runs_the_job_rekpipe_backfill_creates``
calls the CLI's ``do_cli``) and over the server of ``rekpipe local up``, where ``rekpipe --local
backfill`` and ``aws s3control create-job/describe-job/list-jobs`` reach it over HTTP
(``tests/cli/test_cli_local.py``). Calling :class:`~.runner.BatchOperationsRunner` directly would skip
the CreateJob request the CLI builds, and the AWS CLI could not see the job.

What it adds: the four routes (``{0}/v20180820/jobs``, ``.../jobs/<id>``, ``.../jobs/<id>/status``,
with their Flask forms) on ``moto.s3control.urls.url_paths``, and the ``create_job``, ``describe_job``,
``list_jobs`` and ``update_job_status`` handlers on ``S3ControlResponse``, each forwarding to the one
installed :class:`~.service.BatchOperationsService`. Only what moto lacks is added, and
:func:`remove_jobs_api` takes exactly that away again.

Upstream: the feature request draft ``docs/upstream/s3control-batch-operations-jobs.md`` (no jobs
routes in moto at 0af643a, 2026-08-22, nor in 5.2.5). Drop this module once moto serves these routes.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from rekpipe.emulator.batch_operations.exceptions import BadRequestError, BatchOperationsError

if TYPE_CHECKING:
    from rekpipe.emulator.batch_operations.service import BatchOperationsService

_JOB_PATHS = {
    r"{0}/v20180820/jobs$": "dispatch",
    r"{0}/v20180820/jobs/(?P<id>[^/]+)$": "dispatch",
    r"{0}/v20180820/jobs/(?P<id>[^/]+)/status$": "dispatch",
    "/v20180820/jobs": "dispatch",
    "/v20180820/jobs/<id>": "dispatch",
    "/v20180820/jobs/<id>/status": "dispatch",
}
_lock = threading.Lock()
_active_service: BatchOperationsService | None = None
_added_paths: list[str] = []
_added_methods: list[str] = []


def add_jobs_api(service: BatchOperationsService) -> None:
    """Route moto's S3 Control jobs requests to ``service``.

    Call it before the first S3 Control request reaches a moto server: a server fixes a service's
    routes when it first serves it. Raises :class:`BatchOperationsError` when a service is already added.
    """
    global _active_service
    from moto.s3control import urls
    from moto.s3control.responses import S3ControlResponse

    with _lock:
        if _active_service is not None:
            raise BatchOperationsError("a BatchOperationsService is already installed")
        for path in _JOB_PATHS:
            if path not in urls.url_paths:
                urls.url_paths[path] = S3ControlResponse.dispatch
                _added_paths.append(path)
        for name, method in _RESPONSE_METHODS.items():
            if not hasattr(S3ControlResponse, name):
                setattr(S3ControlResponse, name, method)
                _added_methods.append(name)
        _active_service = service


def remove_jobs_api(service: BatchOperationsService) -> None:
    """Take away what :func:`add_jobs_api` added for ``service`` (nothing if another one is added)."""
    global _active_service
    from moto.s3control import urls
    from moto.s3control.responses import S3ControlResponse

    with _lock:
        if _active_service is not service:
            return
        for path in _added_paths:
            urls.url_paths.pop(path, None)
        for name in _added_methods:
            with contextlib.suppress(AttributeError):
                delattr(S3ControlResponse, name)
        _added_paths.clear()
        _added_methods.clear()
        _active_service = None


# --- the handlers added to S3ControlResponse (``self`` is moto's response object) ---------------------
def _service() -> BatchOperationsService:
    if _active_service is None:
        raise BadRequestError("S3 Batch Operations is not enabled in this emulator")
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
