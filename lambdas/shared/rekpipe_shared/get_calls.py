"""Rekognition Get* calls: shared under the account's TPS quota, retried through bursts of throttling.

Every function that calls a Get* API (collect_results, check_job, start_job's resume path,
job_completed) goes through :class:`GetCaller`, so a job that SUCCEEDED and was paid for never ends
FAILED because a burst of completions made Get* throttle:

- **Pacing across functions.** Get* quotas are per API and per account (20 TPS in the large
  regions, 5 elsewhere: AWS General Reference, "Amazon Rekognition endpoints and quotas"), shared by
  every concurrent collection. :class:`GetRateLimiter` counts calls per API and per second in one
  DynamoDB item (an atomic ADD): the n-th caller of a window waits until ``window + (n-1)/quota``,
  callers past the quota move to the next window. So concurrent collections together stay at the
  quota, evenly spread. If the table cannot be reached the call goes ahead (throttling is then
  retried): pacing must never lose results.
- **Retries.** Throttling and InternalServerError are retried with capped, full-jitter exponential
  backoff while the function has time; then :class:`RekognitionThrottledError` or
  :class:`RekognitionUnavailableError` is raised, which the state machine retries by name with a
  longer backoff, so the console shows which it was. Other errors are the caller's to judge.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import error_code, error_message
from rekpipe_shared.exceptions import RekognitionThrottledError, RekognitionUnavailableError
from rekpipe_shared.operations import RETRYABLE_ERRORS, THROTTLING_ERRORS, operation
from rekpipe_shared.quotas import pipeline_quotas, region_default
from rekpipe_shared.schema import RATE_KEY_ATTR, TTL_ATTR

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.settings import PipelineSettings

logger = logging.getLogger(__name__)

GET_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5,
                           read_timeout=60, user_agent_appid="rekpipe")
"""No botocore retries: every Get* retry is ours, paced, counted and bounded by the time left."""
RATE_ITEM_TTL_SECONDS = 3600
MAX_PACING_WAIT_SECONDS = 120.0
"""A caller that has waited this long for a window goes ahead and lets retries absorb any throttle."""

MAX_ATTEMPTS_ENV = "GET_RETRY_MAX_ATTEMPTS"
BASE_SECONDS_ENV = "GET_RETRY_BASE_SECONDS"
CAP_SECONDS_ENV = "GET_RETRY_CAP_SECONDS"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BASE_SECONDS = 0.5
DEFAULT_CAP_SECONDS = 8.0
TIME_RESERVE_SECONDS = 5.0
"""Time kept back after the last retry so the function can still return its error."""


def get_client() -> Any:
    """The Rekognition client for Get* calls (no hidden retries)."""
    return boto3.client("rekognition", config=GET_CLIENT_CONFIG)


class GetRateLimiter:
    """Per-API, per-second call windows in DynamoDB, shared by every function that calls Get*.

    Parameters
    ----------
    table_name: str | None
        The rate-limit table; None (or a quota of 0) turns pacing off.
    tps: float | Callable[[str], float]
        Calls per second allowed for each Get* API, or a function of the API's name giving it (the discovered
        quota, ``RekognitionQuotas.value``: a raised quota is used within the quotas' refresh interval).
    boto3_client: Any
        Injected DynamoDB client (tests).
    clock, sleep: Callable
        Injected time (tests).
    """

    def __init__(self, table_name: str | None, tps: float | Callable[[str], float], *, boto3_client: Any = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table_name = table_name
        self._tps = tps if callable(tps) else (lambda _api, rate=float(tps): rate)
        self._client = boto3_client
        self._clock = clock
        self._sleep = sleep

    def tps(self, api: str) -> float:
        """The calls per second allowed for ``api`` now."""
        return float(self._tps(api))

    @staticmethod
    def windows(tps: float) -> tuple[int, int]:
        """(window seconds, calls per window): fractional quotas use longer windows, so each still admits
        a whole call."""
        window = 1 if tps >= 1 else math.ceil(1 / tps) if tps > 0 else 1
        return window, max(1, math.floor(tps * window))

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 3}))
        return self._client

    def acquire(self, api: str, *, max_wait: float = MAX_PACING_WAIT_SECONDS) -> float:
        """Wait for this call's place under the quota, at most ``max_wait`` seconds (then the call goes
        ahead and any throttle is retried); returns the time (epoch seconds) it was given."""
        started = self._clock()
        tps = self.tps(api) if self.table_name else 0.0
        if tps <= 0:
            return started
        window_seconds, capacity = self.windows(tps)
        while True:
            now = self._clock()
            window = int(now // window_seconds) * window_seconds
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key={RATE_KEY_ATTR: {"S": f"{api}#{window}"}},
                    UpdateExpression="ADD calls :one SET #ttl = if_not_exists(#ttl, :ttl)",
                    ExpressionAttributeNames={"#ttl": TTL_ATTR},
                    ExpressionAttributeValues={":one": {"N": "1"}, ":ttl": {"N": str(window + RATE_ITEM_TTL_SECONDS)}},
                    ReturnValues="UPDATED_NEW",
                )
            except (ClientError, BotoCoreError) as error:  # pacing is an optimisation; the call must still happen
                logger.warning("Get* pacing unavailable (%s); calling %s unpaced", error_code(error), api)
                return now
            position = int(response["Attributes"]["calls"]["N"])
            if position <= capacity:
                slot = window + (position - 1) * window_seconds / capacity
                if slot > now:
                    self._sleep(slot - now)
                return max(slot, now)
            jitter = random.uniform(0, window_seconds / capacity)
            pause = max(0.0, window + window_seconds - now) + jitter
            if now - started + pause > max_wait:
                return now
            self._sleep(pause)


class GetCaller:
    """Calls Get* APIs with shared pacing and capped, jittered retries, counting what it retried.

    Parameters
    ----------
    rekognition: Any
        A Rekognition client; :func:`get_client` builds one without botocore retries.
    limiter: GetRateLimiter
        The shared pacing.
    seconds_left: Callable[[], float]
        Time the invocation has left; retries stop before it runs out.
    max_attempts, base_seconds, cap_seconds: int | float | None
        Backoff shape; the ``GET_RETRY_*`` environment variables, else 8 attempts, 0.5 s, 8 s.

    Attributes
    ----------
    retries: dict[str, int]
        Error code -> retries made, over this caller's life (logged and put in metrics).
    """

    def __init__(self, rekognition: Any, limiter: GetRateLimiter, *, seconds_left: Callable[[], float] | None = None,
                 max_attempts: int | None = None, base_seconds: float | None = None,
                 cap_seconds: float | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rekognition = rekognition
        self.limiter = limiter
        self.seconds_left = seconds_left or (lambda: 900.0)
        self.max_attempts = max_attempts or int(os.environ.get(MAX_ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS))
        self.base_seconds = base_seconds if base_seconds is not None else float(
            os.environ.get(BASE_SECONDS_ENV, DEFAULT_BASE_SECONDS))
        self.cap_seconds = cap_seconds if cap_seconds is not None else float(
            os.environ.get(CAP_SECONDS_ENV, DEFAULT_CAP_SECONDS))
        self._sleep = sleep
        self.retries: dict[str, int] = {}

    def call(self, api: str, request: dict[str, Any]) -> dict[str, Any]:
        """One Get* call; raises RekognitionThrottledError/RekognitionUnavailableError when retries run out,
        and any other ClientError as it came."""
        method = getattr(self.rekognition, xform_name(api))
        job_id = str(request.get("JobId", ""))
        attempt = 0
        while True:
            # Never let pacing eat the time the function needs to call, retry and return.
            self.limiter.acquire(api, max_wait=min(MAX_PACING_WAIT_SECONDS,
                                                   max(0.0, self.seconds_left() - 2 * TIME_RESERVE_SECONDS)))
            attempt += 1
            try:
                response = method(**request)
            except ClientError as error:
                code = error_code(error)
                if code not in RETRYABLE_ERRORS:
                    raise
                error_class = RekognitionThrottledError if code in THROTTLING_ERRORS else RekognitionUnavailableError
                delay = random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))
                if attempt >= self.max_attempts or self.seconds_left() - delay < TIME_RESERVE_SECONDS:
                    raise error_class(api, job_id, attempt, code, error_message(error)) from error
                self.retries[code] = self.retries.get(code, 0) + 1
                self._sleep(delay)
                continue
            response.pop("ResponseMetadata", None)
            return response

    @property
    def retry_count(self) -> int:
        return sum(self.retries.values())


def default_limiter(settings: PipelineSettings, table_name: str | None) -> GetRateLimiter:
    """The stack's shared limiter on ``table_name`` (the handler's ``RATE_LIMIT_TABLE_NAME``), pacing each Get* API
    to the account's quota for it, read from Service Quotas and refreshed (``rekpipe_shared.quotas``), capped by
    ``video_get_tps_quota``. The handler passes the table, so only the functions that pace get the variable."""
    apis = sorted({api for name in settings.video_operations if (api := operation(name).video_get_api)})
    quotas = pipeline_quotas(settings, apis)

    def tps(api: str) -> float:
        if api in quotas.names:
            return quotas.value(api)
        return settings.video_get_tps_quota or region_default(api, quotas.region)  # an API not configured

    return GetRateLimiter(table_name, tps)


JOB_IN_PROGRESS = "IN_PROGRESS"


@dataclass(frozen=True)
class JobStatus:
    """A video job's state as Get* reports it: ``IN_PROGRESS``, ``SUCCEEDED``, ``FAILED`` (or ``ERROR``)."""

    status: str
    message: str
    """Rekognition's ``StatusMessage`` (its reason for a failure), or "" when it gives none."""

    @property
    def ended(self) -> bool:
        return self.status != JOB_IN_PROGRESS


def job_status(call: Callable[[str, dict[str, Any]], dict[str, Any]], operation_name: str, job_id: str) -> JobStatus:
    """Ask a video job's status with one Get* call of at most one result (``MaxResults=1``): the status
    without paging its results.

    ``call(api, request)`` makes the call: :meth:`GetCaller.call` (paced and retried) or
    :func:`client_call` (one plain client call); its errors propagate.
    """
    response = call(str(operation(operation_name).video_get_api), {"JobId": job_id, "MaxResults": 1})
    return JobStatus(str(response.get("JobStatus", JOB_IN_PROGRESS)), str(response.get("StatusMessage") or ""))


def client_call(rekognition: Any) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """``call(api, request)`` on a Rekognition client, with no pacing or retries of ours."""

    def call(api: str, request: dict[str, Any]) -> dict[str, Any]:
        return getattr(rekognition, xform_name(api))(**request)

    return call
