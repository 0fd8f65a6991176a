"""Quota discovery (rekpipe_shared.quotas) against moto's Service Quotas as the emulator extends it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from rekpipe.emulator import service_quotas
from rekpipe.simulator import SimulatorConfig
from rekpipe_shared.quotas import (
    SOURCE_APPLIED,
    SOURCE_AWS_DEFAULT,
    SOURCE_REGION_DEFAULT,
    VIDEO_JOBS,
    RekognitionQuotas,
    pipeline_quotas,
    quota_key,
    region_default,
)
from rekpipe_shared.settings import PipelineSettings

if TYPE_CHECKING:
    from collections.abc import Iterator


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(aws: Any) -> Iterator[tuple[SimulatorConfig, service_quotas.RekognitionServiceQuotas]]:
    """moto's Service Quotas answering for ``rekognition`` from a simulator config."""
    config = SimulatorConfig(tps_quotas={"DetectLabels": 7.0}, max_concurrent_jobs=12)
    quotas = service_quotas.RekognitionServiceQuotas(lambda: config, region="us-east-1", account_id="123456789012")
    undo = service_quotas.install(quotas)
    yield config, quotas
    undo()


def test_quota_key_reads_the_api_from_the_quota_name():
    # GIVEN Service Quotas names as the console shows them
    # WHEN / THEN each is tied to the API it limits, the job quota to VIDEO_JOBS, others to nothing
    assert quota_key("Transactions per second per account for the Amazon Rekognition Image operation "
                     "DetectLabels") == "DetectLabels"
    assert quota_key("Concurrent Amazon Rekognition Video stored video jobs per account") == VIDEO_JOBS
    assert quota_key("Maximum number of faces per collection") is None


def test_region_defaults_follow_the_general_reference():
    # GIVEN the three large regions and one other
    # WHEN / THEN the documented defaults apply
    assert region_default("DetectLabels", "us-west-2") == 50
    assert region_default("DetectLabels", "ap-south-1") == 5
    assert region_default("DetectFaces", "eu-west-1") == 100
    assert region_default("DetectFaces", "eu-central-1") == 25
    assert region_default("DetectProtectiveEquipment", "us-east-1") == 5
    assert region_default("StartLabelDetection", "us-east-1") == 5
    assert region_default("GetLabelDetection", "us-east-1") == 20
    assert region_default("GetLabelDetection", "ap-south-1") == 5
    assert region_default(VIDEO_JOBS, "ap-south-1") == 20


def test_quotas_come_from_service_quotas_applied_then_default(served):
    # GIVEN the simulator enforces DetectLabels at 7 TPS and 12 jobs, and does not limit DetectText
    quotas = RekognitionQuotas(["DetectLabels", "DetectText", VIDEO_JOBS], boto3_client=boto3.client("service-quotas"))

    # WHEN the quotas are read
    found = quotas.all()

    # THEN enforced ones are the applied values, the other is Service Quotas' default for the region
    assert (found["DetectLabels"].value, found["DetectLabels"].source) == (7.0, SOURCE_APPLIED)
    assert (found[VIDEO_JOBS].value, found[VIDEO_JOBS].source) == (12.0, SOURCE_APPLIED)
    assert (found["DetectText"].value, found["DetectText"].source) == (50.0, SOURCE_AWS_DEFAULT)
    assert found["DetectLabels"].quota_code == service_quotas.quota_code("DetectLabels")


def test_a_raised_quota_applies_after_the_refresh_interval(served):
    # GIVEN quotas read once, with a 300 s refresh interval
    config, _ = served
    clock = Clock()
    client = boto3.client("service-quotas")
    quotas = RekognitionQuotas(["DetectLabels"], refresh_seconds=300, boto3_client=client, clock=clock)
    assert quotas.value("DetectLabels") == 7.0

    # WHEN the quota is raised through Service Quotas (approved at once here)
    client.request_service_quota_increase(ServiceCode="rekognition", QuotaCode=service_quotas.quota_code("DetectLabels"),
                                          DesiredValue=40.0)

    # THEN the simulator enforces it at once, the cached reading holds until the interval ends, then follows
    assert config.tps_quotas["DetectLabels"] == 40.0
    clock.now = 299.0
    assert quotas.value("DetectLabels") == 7.0
    clock.now = 300.0
    assert quotas.value("DetectLabels") == 40.0


def test_a_cap_lowers_the_quota_and_a_cap_above_it_warns(served, caplog):
    # GIVEN caps of 3 TPS on DetectLabels and 100 jobs (above the 12 the account has)
    quotas = RekognitionQuotas(["DetectLabels", VIDEO_JOBS], caps={"DetectLabels": 3, VIDEO_JOBS: 100},
                               boto3_client=boto3.client("service-quotas"))

    # WHEN the quotas are read
    with caplog.at_level(logging.WARNING, logger="rekpipe_shared.quotas"):
        found = quotas.all()

    # THEN the lower cap applies, the higher one does not and is warned about
    assert found["DetectLabels"].value == 3
    assert found[VIDEO_JOBS].value == 12
    assert any("above the account's quota" in r.getMessage() and VIDEO_JOBS in r.getMessage() for r in caplog.records)


def test_region_defaults_apply_when_service_quotas_refuses(aws, caplog):
    # GIVEN a Service Quotas client that is refused (no permission), in a small region
    client = boto3.client("service-quotas", region_name="ap-south-1")
    stubber = Stubber(client)
    stubber.add_client_error("list_service_quotas", "AccessDeniedException", "not allowed")
    stubber.activate()
    quotas = RekognitionQuotas(["DetectLabels", "GetLabelDetection", VIDEO_JOBS], boto3_client=client)

    # WHEN the quotas are read
    with caplog.at_level(logging.WARNING, logger="rekpipe_shared.quotas"):
        found = quotas.all()

    # THEN the region's documented defaults apply, and the log says why and which
    assert {name: (q.value, q.source) for name, q in found.items()} == {
        "DetectLabels": (5, SOURCE_REGION_DEFAULT), "GetLabelDetection": (5, SOURCE_REGION_DEFAULT),
        VIDEO_JOBS: (20, SOURCE_REGION_DEFAULT)}
    assert any("AccessDeniedException" in r.getMessage() and "ap-south-1" in r.getMessage() for r in caplog.records)


def test_pipeline_quotas_take_caps_and_refresh_from_the_settings(served):
    # GIVEN settings that cap image APIs at 4 TPS and refresh every 60 s
    settings = PipelineSettings(image_tps_quota=4, quota_refresh_seconds=60, video_slot_limit=5)

    # WHEN the pipeline's quotas are built from them
    quotas = pipeline_quotas(settings, ["DetectLabels", VIDEO_JOBS], boto3_client=boto3.client("service-quotas"))

    # THEN the caps and the interval are the settings'
    assert quotas.refresh_seconds == 60
    assert quotas.value("DetectLabels") == 4
    assert quotas.value(VIDEO_JOBS) == 5
