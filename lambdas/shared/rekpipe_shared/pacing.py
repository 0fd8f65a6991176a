"""Pacing of image calls: at the account's discovered quota, together, backing off on throttling.

Rekognition's TPS quotas are per account and API, so every concurrent ``analyze_image`` invocation
draws from one budget. The pacer gives each call its own instant on one shared schedule per API,
kept in the rate-limit table (:class:`SharedSchedule`: one conditional update per call, the generic
cell rate algorithm's "theoretical arrival time"), so concurrent invocations converge on the quota
together, whatever their number, instead of each guessing a share of ``quota / concurrency``. Unlike
per-second windows, a schedule never lets the end of one second and the start of the next both go
at once, which a bucket of one second's worth (Rekognition's, the simulator's) would throttle.

The window's size is the quota read from Service Quotas (:mod:`rekpipe_shared.quotas`), scaled by an
AIMD factor: a throttle (another workload on the account, a quota lowered) multiplies this caller's
factor by ``decrease``; every success adds ``increase`` back, up to 1. So the rate drops fast under
throttling and probes back up to the quota, and a raised quota is used from the next refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import error_code
from rekpipe_shared.schema import RATE_KEY_ATTR, TTL_ATTR

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.quotas import RekognitionQuotas

logger = logging.getLogger(__name__)
SCHEDULE_TTL_SECONDS = 3600


class SharedSchedule:
    """One schedule per API in the rate-limit table: each caller takes the next free instant.

    The item holds ``tat``, the instant after the last granted call. A caller adds its interval to it
    if it is still ahead of now (conditional ``tat >= now``), or restarts it from now (``tat < now``),
    and goes at the instant it got. Two callers can never get the same instant.

    Parameters
    ----------
    table_name: str | None
        The rate-limit table; None turns the schedule off.
    boto3_client: Any
        Injected DynamoDB client (tests).
    clock, sleep: Callable
        Injected time (tests).
    """

    def __init__(self, table_name: str | None, *, boto3_client: Any = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.table_name = table_name
        self._client = boto3_client
        self._clock = clock
        self._sleep = sleep

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 3}))
        return self._client

    def acquire(self, api: str, interval: float, *, max_wait: float = 60.0) -> float:
        """Wait for this call's instant (at most ``max_wait`` s); returns the instant (epoch seconds)."""
        now = self._clock()
        if not self.table_name or interval <= 0:
            return now
        key = {RATE_KEY_ATTR: {"S": f"{api}#schedule"}}
        values = {":i": {"N": f"{interval:.6f}"}, ":now": {"N": f"{now:.6f}"},
                  ":ttl": {"N": str(int(now) + SCHEDULE_TTL_SECONDS)}}
        try:
            try:
                response = self.client.update_item(
                    TableName=self.table_name, Key=key, UpdateExpression="SET tat = tat + :i, #ttl = :ttl",
                    ConditionExpression="tat >= :now", ExpressionAttributeNames={"#ttl": TTL_ATTR},
                    ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                # Idle schedule (or none yet): restart it from now, race-free.
                values[":next"] = {"N": f"{now + interval:.6f}"}
                response = self._restart(key, values)
        except (ClientError, BotoCoreError) as error:  # pacing is an optimisation; the call must still happen
            logger.warning("Image pacing unavailable (%s); calling %s unpaced", error_code(error), api)
            return now
        instant = float(response["Attributes"]["tat"]["N"]) - interval
        wait = instant - now
        if wait > 0:
            self._sleep(min(wait, max_wait))
        return instant

    def _restart(self, key: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """``tat = max(tat, now) + interval`` when the schedule was idle, race-free."""
        while True:
            try:
                return self.client.update_item(
                    TableName=self.table_name, Key=key, UpdateExpression="SET tat = :next, #ttl = :ttl",
                    ConditionExpression="attribute_not_exists(tat) OR tat < :now",
                    ExpressionAttributeNames={"#ttl": TTL_ATTR},
                    ExpressionAttributeValues={k: v for k, v in values.items() if k != ":i"}, ReturnValues="UPDATED_NEW")
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            try:  # another caller restarted it first: queue behind it
                return self.client.update_item(
                    TableName=self.table_name, Key=key, UpdateExpression="SET tat = tat + :i, #ttl = :ttl",
                    ConditionExpression="tat >= :now", ExpressionAttributeNames={"#ttl": TTL_ATTR},
                    ExpressionAttributeValues={k: v for k, v in values.items() if k != ":next"},
                    ReturnValues="UPDATED_NEW")
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise

AIMD_DECREASE = 0.7
AIMD_INCREASE = 0.02
"""Factor regained per successful call: from 0.7 back to 1 in 15 calls, about a second at 15+ TPS."""
AIMD_FLOOR = 0.1


class AimdPacer:
    """The shared schedule at ``quota × factor`` per API, the factor kept by AIMD.

    Parameters
    ----------
    quotas: RekognitionQuotas
        Where the TPS of each API comes from (cached and refreshed there).
    schedule: SharedSchedule
        The shared schedule (its table None: no shared pacing, only the retries' backoff).
    """

    def __init__(self, quotas: RekognitionQuotas, schedule: SharedSchedule, *, decrease: float = AIMD_DECREASE,
                 increase: float = AIMD_INCREASE, floor: float = AIMD_FLOOR) -> None:
        self.quotas = quotas
        self.schedule = schedule
        self.decrease, self.increase, self.floor = decrease, increase, floor
        self._lock = threading.Lock()
        self._factors: dict[str, float] = {}

    def rate(self, api: str) -> float:
        """Calls per second this caller currently allows itself for ``api``."""
        return self.quotas.value(api) * self.factor(api)

    def factor(self, api: str) -> float:
        with self._lock:
            return self._factors.get(api, 1.0)

    def wait(self, api: str, *, max_wait: float = 60.0) -> float:
        """Block until this call's place under the rate; returns the seconds waited."""
        started = time.monotonic()
        rate = self.rate(api)
        if rate <= 0:
            return 0.0
        self.schedule.acquire(api, 1.0 / rate, max_wait=max_wait)
        return time.monotonic() - started

    def throttled(self, api: str) -> float:
        """Multiplicative decrease after a throttle; returns the new factor."""
        with self._lock:
            factor = max(self.floor, self._factors.get(api, 1.0) * self.decrease)
            self._factors[api] = factor
            return factor

    def succeeded(self, api: str) -> float:
        """Additive increase after a success, up to the full quota; returns the new factor."""
        with self._lock:
            factor = min(1.0, self._factors.get(api, 1.0) + self.increase)
            self._factors[api] = factor
            return factor
