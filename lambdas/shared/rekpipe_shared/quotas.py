"""The account's Rekognition quotas, found at run time rather than configured.

A raised quota must take effect with no redeploy, so every function reads the quotas it paces by
from the Service Quotas API (service code ``rekognition``) and keeps them for
``quota_refresh_seconds`` (default 5 minutes) before reading them again:

1. ``ListServiceQuotas``: the values applied to this account ("source" ``service-quotas``). AWS
   notes that "for some quotas, only the default values are available. If the applied quota value is
   not available for a quota, the quota is not retrieved" (Service Quotas API Reference,
   ListServiceQuotas), so
2. ``ListAWSDefaultServiceQuotas`` fills the gaps (``aws-default``), and
3. where Service Quotas cannot be read at all (no permission, no endpoint, a partition without it),
   the documented defaults of the region apply (``region-default``), with a log line that says so.

The quotas are told apart by name, not by quota code: a name such as "Transactions per second per
account for the Amazon Rekognition Image operation DetectLabels" carries the API it limits, and the
stored-video job quota is "Concurrent Amazon Rekognition Video stored video jobs per account"
(Service Quotas console, Amazon Rekognition). The quota code found is kept for ``rekpipe status``.

Each quota in use is then ``min(quota, cap)`` where a setting caps it (0 = no cap); a cap above the
quota is pointless and logged as a warning, since the account would throttle it anyway.

Region defaults (AWS General Reference, "Amazon Rekognition endpoints and quotas",
https://docs.aws.amazon.com/general/latest/gr/rekognition.html#limits_rekognition):

- DetectLabels, DetectModerationLabels, DetectText, RecognizeCelebrities, SearchFacesByImage:
  50 TPS in us-east-1, us-west-2 and eu-west-1, 5 TPS elsewhere;
- DetectFaces, CompareFaces: 100 TPS there, 25 elsewhere; DetectProtectiveEquipment: 5 TPS;
- every stored-video Start* API: 5 TPS; every Get* API: 20 TPS there, 5 elsewhere;
- concurrent stored-video jobs: 20.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rekpipe_shared.aws import error_code

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

SERVICE_CODE = "rekognition"
VIDEO_JOBS = "ConcurrentStoredVideoJobs"
"""The key of the concurrent stored-video job quota (the others are keyed by API name)."""
SOURCE_APPLIED = "service-quotas"
SOURCE_AWS_DEFAULT = "aws-default"
SOURCE_REGION_DEFAULT = "region-default"
DEFAULT_REFRESH_SECONDS = 300

LARGE_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
"""The regions with the higher default TPS quotas (AWS General Reference)."""
_HIGH_DETECT = ("DetectLabels", "DetectModerationLabels", "DetectText", "RecognizeCelebrities", "SearchFacesByImage")
_FACES = ("DetectFaces", "CompareFaces")
_JOB_NAME = re.compile(r"concurrent.*stored[ -]video.*jobs", re.IGNORECASE)
_API_IN_NAME = re.compile(r"\b((?:Detect|Recognize|Search|Compare|Start|Get)[A-Z][A-Za-z]+)\b")

QUOTAS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10,
                       user_agent_appid="rekpipe")


def region_default(name: str, region: str) -> float:
    """The documented default quota of one API (or of ``VIDEO_JOBS``) in a region."""
    large = region in LARGE_REGIONS
    if name == VIDEO_JOBS:
        return 20
    if name in _HIGH_DETECT:
        return 50 if large else 5
    if name in _FACES:
        return 100 if large else 25
    if name.startswith("Start"):
        return 5
    if name.startswith("Get"):
        return 20 if large else 5
    return 5  # DetectProtectiveEquipment, and the lowest default for any other API


def quota_key(quota_name: str) -> str | None:
    """Which API (or ``VIDEO_JOBS``) a Service Quotas entry limits, from its name; None if not ours."""
    if _JOB_NAME.search(quota_name):
        return VIDEO_JOBS
    if "per second" not in quota_name.lower() and "tps" not in quota_name.lower():
        return None
    match = _API_IN_NAME.search(quota_name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class QuotaInUse:
    """One quota as the pipeline applies it.

    Parameters
    ----------
    name: str
        The API it limits, or ``ConcurrentStoredVideoJobs``.
    value: float
        What the pipeline runs at: the quota, lowered by the cap if any.
    quota: float
        The account's quota, from ``source``.
    source: str
        ``service-quotas`` (applied value), ``aws-default`` (Service Quotas' default) or ``region-default``.
    cap: float | None
        The setting that caps it, when set.
    quota_code: str | None
        The Service Quotas code, when it was read from there.
    """

    name: str
    value: float
    quota: float
    source: str
    cap: float | None = None
    quota_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RekognitionQuotas:
    """The quotas of the APIs this function calls, read from Service Quotas and cached.

    Parameters
    ----------
    names: Iterable[str]
        The APIs (and ``VIDEO_JOBS``) this caller needs.
    caps: dict[str, float] | None
        Name -> cap from the settings (0 or absent: no cap).
    region: str | None
        The region whose defaults apply when Service Quotas cannot be read (the client's otherwise).
    refresh_seconds: float
        How long a reading is trusted before Service Quotas is asked again.
    boto3_client: Any
        Injected Service Quotas client (tests).
    clock: Callable[[], float]
        Monotonic seconds (tests).
    """

    def __init__(self, names: Iterable[str], *, caps: dict[str, float] | None = None, region: str | None = None,
                 refresh_seconds: float = DEFAULT_REFRESH_SECONDS, boto3_client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.names = tuple(dict.fromkeys(names))
        self.caps = {name: float(cap) for name, cap in (caps or {}).items() if cap}
        self.refresh_seconds = refresh_seconds
        self._client = boto3_client
        self._region = region
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._quotas: dict[str, QuotaInUse] = {}
        self._warned: set[tuple[str, float, float]] = set()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("service-quotas", config=QUOTAS_CONFIG)
        return self._client

    @property
    def region(self) -> str:
        return self._region or self.client.meta.region_name

    def get(self, name: str) -> QuotaInUse:
        """The quota in use for one API (or ``VIDEO_JOBS``), refreshed when the reading is stale."""
        return self.all()[name]

    def value(self, name: str) -> float:
        return self.get(name).value

    def all(self) -> dict[str, QuotaInUse]:
        """Every quota this caller needs, read again if the last reading is older than the refresh interval."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.refresh_seconds:
                self._quotas = self._read()
                self._read_at = now
            return dict(self._quotas)

    def refresh(self) -> dict[str, QuotaInUse]:
        """Read Service Quotas now, whatever the age of the last reading."""
        with self._lock:
            self._read_at = None
        return self.all()

    # --- internals -----------------------------------------------------------------------------
    def _read(self) -> dict[str, QuotaInUse]:
        found: dict[str, tuple[float, str, str | None]] = {}
        try:
            for operation, source in (("list_service_quotas", SOURCE_APPLIED),
                                      ("list_aws_default_service_quotas", SOURCE_AWS_DEFAULT)):
                if all(name in found for name in self.names):
                    break
                for entry in self._entries(operation):
                    key = quota_key(str(entry.get("QuotaName", "")))
                    if key in self.names and key not in found and entry.get("Value") is not None:
                        found[key] = (float(entry["Value"]), source, entry.get("QuotaCode"))
        except (ClientError, BotoCoreError, NotImplementedError) as error:
            # NotImplementedError: an emulator without Service Quotas; pacing must still run.
            logger.warning("Service Quotas cannot be read (%s); the documented defaults of %s apply to %s",
                           error_code(error), self.region, ", ".join(n for n in self.names if n not in found))
        missing = [name for name in self.names if name not in found]
        if missing and found:
            logger.warning("Service Quotas has no %s quota; the documented defaults of %s apply",
                           ", ".join(missing), self.region)
        quotas = {}
        for name in self.names:
            quota, source, code = found.get(name) or (region_default(name, self.region), SOURCE_REGION_DEFAULT, None)
            quotas[name] = self._in_use(name, quota, source, code)
        return quotas

    def _entries(self, operation: str) -> Iterable[dict[str, Any]]:
        paginator = self.client.get_paginator(operation)
        for page in paginator.paginate(ServiceCode=SERVICE_CODE):
            yield from page.get("Quotas", [])

    def _in_use(self, name: str, quota: float, source: str, code: str | None) -> QuotaInUse:
        cap = self.caps.get(name)
        if cap is not None and cap > quota and (name, cap, quota) not in self._warned:
            self._warned.add((name, cap, quota))
            logger.warning("The setting caps %s at %s, above the account's quota of %s (%s); the quota applies",
                           name, cap, quota, source)
        value = min(quota, cap) if cap is not None else quota
        return QuotaInUse(name=name, value=value, quota=quota, source=source, cap=cap, quota_code=code)


def pipeline_quotas(settings: Any, names: Iterable[str], *, boto3_client: Any = None) -> RekognitionQuotas:
    """The quotas of ``names`` with the caps and refresh interval of the deployment's settings.

    ``image_tps_quota`` caps every image API, ``video_get_tps_quota`` every Get* API and
    ``video_slot_limit`` the concurrent stored-video jobs (0 where allowed: no cap).
    """
    names = tuple(names)
    caps: dict[str, float] = {}
    for name in names:
        if name == VIDEO_JOBS:
            caps[name] = settings.video_slot_limit
        elif name.startswith("Get"):
            caps[name] = settings.video_get_tps_quota
        elif not name.startswith("Start"):
            caps[name] = settings.image_tps_quota
    return RekognitionQuotas(names, caps=caps, refresh_seconds=settings.quota_refresh_seconds,
                             boto3_client=boto3_client)


def initial_slot_limit(settings: Any) -> int:
    """The stored slot limit before the dispatcher's first tick has read the job quota: the cap if one is set,
    else the documented default quota (20 concurrent stored-video jobs in every region)."""
    return int(settings.video_slot_limit or region_default(VIDEO_JOBS, ""))


__all__ = [
    "SERVICE_CODE",
    "VIDEO_JOBS",
    "QuotaInUse",
    "RekognitionQuotas",
    "initial_slot_limit",
    "pipeline_quotas",
    "quota_key",
    "region_default",
]
