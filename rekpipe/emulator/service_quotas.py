"""Service Quotas for Rekognition, served from the quotas the simulator enforces.

moto 5.2.5's ``servicequotas`` knows only the ``vpc`` service, and only ``GetServiceQuota`` and
``ListAWSDefaultServiceQuotas`` (its docstring: "The ServiceCodes that are currently implemented are:
vpc"). The pipeline reads its Rekognition quotas with ``ListServiceQuotas`` and
``ListAWSDefaultServiceQuotas`` (:mod:`rekpipe_shared.quotas`), so this module adds service code
``rekognition`` to those, to ``GetServiceQuota``, and ``RequestServiceQuotaIncrease``, which here is
approved at once, so a test, a bench or the AWS CLI against ``rekpipe local up`` can raise a quota
mid-run.

Every value is read from the live :class:`rekpipe.simulator.SimulatorConfig` on each call, so what
Service Quotas reports is exactly what the simulator enforces:

- a TPS quota is ``tps_quotas[api]``; an API the simulator does not limit has no applied value
  (ListServiceQuotas leaves it out, as AWS does for quotas with only a default) and its default is the
  region's documented one;
- the concurrent stored-video jobs quota is ``max_concurrent_jobs``.

Quota codes are the emulator's own (``L-`` and 8 hex digits of the name's hash): the pipeline tells
quotas apart by name, never by code.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from rekpipe_shared.operations import CATALOGUE
from rekpipe_shared.quotas import SERVICE_CODE, VIDEO_JOBS, region_default

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.simulator import SimulatorConfig

JOBS_QUOTA_NAME = "Concurrent Amazon Rekognition Video stored video jobs per account"


def quota_name(api: str) -> str:
    """The Service Quotas name of one API's TPS quota (or of ``VIDEO_JOBS``)."""
    if api == VIDEO_JOBS:
        return JOBS_QUOTA_NAME
    kind = "Video" if api.startswith(("Start", "Get")) else "Image"
    return f"Transactions per second per account for the Amazon Rekognition {kind} operation {api}"


def quota_code(api: str) -> str:
    return "L-" + hashlib.sha256(quota_name(api).encode()).hexdigest()[:8].upper()


def known_apis() -> tuple[str, ...]:
    """Every API the catalogue calls, then the job quota."""
    apis: list[str] = []
    for op in CATALOGUE.values():
        apis.extend(api for api in (op.image_api, op.video_start_api, op.video_get_api) if api)
    return (*dict.fromkeys(apis), VIDEO_JOBS)


class RekognitionServiceQuotas:
    """Service Quotas' view of one simulator's config.

    Parameters
    ----------
    config: Callable[[], SimulatorConfig]
        The live config (read on every call).
    region, account_id: str
        For the quota ARNs and the region defaults.
    """

    def __init__(self, config: Callable[[], SimulatorConfig], *, region: str, account_id: str) -> None:
        self._config = config
        self.region = region
        self.account_id = account_id

    def applied(self, api: str) -> float | None:
        config = self._config()
        if api == VIDEO_JOBS:
            return float(config.max_concurrent_jobs)
        value = config.tps_quotas.get(api)
        return float(value) if value is not None else None

    def set(self, api: str, value: float) -> None:
        """Apply a new quota at once: the simulator enforces it from its next call."""
        config = self._config()
        if api == VIDEO_JOBS:
            config.max_concurrent_jobs = int(value)
        else:
            config.tps_quotas[api] = float(value)

    def entry(self, api: str, value: float) -> dict[str, Any]:
        code = quota_code(api)
        return {
            "ServiceCode": SERVICE_CODE, "ServiceName": "Amazon Rekognition", "QuotaCode": code,
            "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.account_id}:{SERVICE_CODE}/{code}",
            "QuotaName": quota_name(api), "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
        }

    def list_applied(self) -> list[dict[str, Any]]:
        return [self.entry(api, value) for api in known_apis() if (value := self.applied(api)) is not None]

    def list_defaults(self) -> list[dict[str, Any]]:
        return [self.entry(api, region_default(api, self.region)) for api in known_apis()]

    def api_of(self, code: str) -> str | None:
        return next((api for api in known_apis() if quota_code(api) == code), None)


def install(quotas: RekognitionServiceQuotas) -> Callable[[], None]:
    """Teach moto's Service Quotas the ``rekognition`` service code; returns the function that undoes it."""
    from moto.servicequotas.exceptions import NoSuchResource
    from moto.servicequotas.models import ServiceQuotasBackend
    from moto.servicequotas.responses import ServiceQuotasResponse

    original_defaults = ServiceQuotasBackend.list_aws_default_service_quotas
    original_get = ServiceQuotasBackend.get_service_quota

    def list_aws_default_service_quotas(self: Any, service_code: str) -> list[dict[str, Any]]:
        if service_code == SERVICE_CODE:
            return quotas.list_defaults()
        return original_defaults(self, service_code)

    def get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
        if service_code != SERVICE_CODE:
            return original_get(self, service_code, quota_code)
        api = quotas.api_of(quota_code)
        value = quotas.applied(api) if api else None
        if api is None or value is None:
            raise NoSuchResource
        return quotas.entry(api, value)

    def list_service_quotas(self: Any) -> str:
        service_code = str(json.loads(self.body).get("ServiceCode"))
        if service_code != SERVICE_CODE:
            raise NoSuchResource
        return json.dumps({"Quotas": quotas.list_applied()})

    def request_service_quota_increase(self: Any) -> str:
        params = json.loads(self.body)
        api = quotas.api_of(str(params.get("QuotaCode")))
        if params.get("ServiceCode") != SERVICE_CODE or api is None:
            raise NoSuchResource
        value = float(params["DesiredValue"])
        quotas.set(api, value)
        entry = quotas.entry(api, value)
        return json.dumps({"RequestedQuota": {
            "Id": hashlib.sha256(f"{api}{value}{time.time()}".encode()).hexdigest()[:32],
            "ServiceCode": SERVICE_CODE, "QuotaCode": entry["QuotaCode"], "QuotaName": entry["QuotaName"],
            "QuotaArn": entry["QuotaArn"], "DesiredValue": value, "Status": "APPROVED", "Unit": "None",
            "GlobalQuota": False, "Created": time.time(), "LastUpdated": time.time()}})

    ServiceQuotasBackend.list_aws_default_service_quotas = list_aws_default_service_quotas
    ServiceQuotasBackend.get_service_quota = get_service_quota
    ServiceQuotasResponse.list_service_quotas = list_service_quotas
    ServiceQuotasResponse.request_service_quota_increase = request_service_quota_increase

    def uninstall() -> None:
        ServiceQuotasBackend.list_aws_default_service_quotas = original_defaults
        ServiceQuotasBackend.get_service_quota = original_get
        del ServiceQuotasResponse.list_service_quotas
        del ServiceQuotasResponse.request_service_quota_increase

    return uninstall
