"""Configuration, clock, quotas, statistics and lifecycle of the Rekognition simulator."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe.simulator import (
    JobEvent,
    RekognitionSimulator,
    SimClock,
    SimulatorConfig,
    completion_to_next_start,
    slot_utilisation,
)
from rekpipe.simulator._throttle import TokenBucket
from rekpipe.simulator.exceptions import RekognitionServiceError
from rekpipe.simulator.jobs import PaginationTokens
from tests.simulator.simdata import NO_RETRIES, s3_image, s3_video

if TYPE_CHECKING:
    from tests.simulator.conftest import NoticeQueue


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", "1"),
        ("clock_scale", 0),
        ("clock_scale", -2.0),
        ("tps_quotas", {"DetectLabels": 0}),
        ("throttle_error", "SlowDownException"),
        ("throttle_rate", 1.5),
        ("failed_job_rate", -0.1),
        ("lost_notice_rate", True),
        ("max_concurrent_jobs", 2.5),
        ("job_duration", (5.0, 1.0)),
        ("job_duration", 3.0),
        ("latency", float("inf")),
        ("video_result_items", -1),
        ("collections", "staff"),
    ],
)
def test_simulator_config_rejects_bad_values(field: str, value: Any) -> None:
    # GIVEN a value outside the field's domain
    # WHEN a config is built with it, or an existing config is changed to it
    # THEN a ValueError names the field
    with pytest.raises(ValueError, match=field.split("_")[0]):
        SimulatorConfig(**{field: value})
    config = SimulatorConfig()
    with pytest.raises(ValueError, match=field.split("_")[0]):
        setattr(config, field, value)


def test_simulator_config_normalises_values() -> None:
    # GIVEN list and iterable inputs
    # WHEN a config is built
    config = SimulatorConfig(job_duration=[1, 3], collections=["staff"], max_concurrent_jobs=0)

    # THEN they are stored as the documented types (and zero job slots is allowed)
    assert config.job_duration == (1.0, 3.0)
    assert config.collections == {"staff"}
    assert config.max_concurrent_jobs == 0


def test_sim_clock_scales_and_advances() -> None:
    # GIVEN a clock running 1000 simulated seconds per real second
    clock = SimClock(scale=1000, start=1_000_000.0)

    # WHEN 20 ms pass, then it is frozen and advanced
    time.sleep(0.02)
    elapsed = clock.now() - 1_000_000.0
    clock.set_scale(0)
    frozen = clock.now()
    time.sleep(0.01)
    still = clock.now()
    clock.advance(5)

    # THEN time ran ~20 s, stood still while frozen, and jumped by exactly 5 s
    assert 15 <= elapsed <= 200
    assert still == frozen
    assert clock.now() == pytest.approx(frozen + 5)
    assert clock.now_ms() == int(clock.now() * 1000)


def test_sim_clock_sleep_uses_simulated_seconds() -> None:
    # GIVEN a clock at 100x
    clock = SimClock(scale=100)

    # WHEN it sleeps 5 simulated seconds
    started = time.monotonic()
    clock.sleep(5)

    # THEN about 50 real milliseconds passed
    assert 0.04 <= time.monotonic() - started < 0.5


def test_token_bucket_allows_quota_per_simulated_second() -> None:
    # GIVEN a 5 TPS bucket at t=0
    bucket = TokenBucket(5, now=0.0)

    # WHEN 10 calls arrive at once, then 10 more spread over the next 2 seconds
    burst = [bucket.take(5, 0.0) for _ in range(10)]
    spread = [bucket.take(5, 0.2 * step) for step in range(1, 11)]

    # THEN the burst is cut at 5 and the spread calls (exactly 5 TPS) all pass
    assert burst.count(True) == 5
    assert all(spread)


def test_token_bucket_supports_fractional_quotas() -> None:
    # GIVEN a quota of one call every two seconds
    bucket = TokenBucket(0.5, now=0.0)

    # WHEN calls arrive each second
    outcomes = [bucket.take(0.5, float(second)) for second in range(4)]

    # THEN every other one passes
    assert outcomes == [True, False, True, False]


def test_pagination_tokens_expire_after_24_hours() -> None:
    # GIVEN a token issued at t=0
    tokens = PaginationTokens("secret")
    token = tokens.encode("job", 1000, now=0.0)

    # WHEN it is decoded within and after 24 hours
    # THEN it works, then raises InvalidPaginationTokenException
    assert tokens.decode("job", token, now=3600.0) == 1000
    with pytest.raises(RekognitionServiceError) as caught:
        tokens.decode("job", token, now=25 * 3600.0)
    assert caught.value.code == "InvalidPaginationTokenException"


def test_slot_metrics_from_event_log() -> None:
    # GIVEN one slot used 0-4 s and 6-10 s
    events = [
        JobEvent(0.0, "start", "a", "StartLabelDetection", "IN_PROGRESS", 1),
        JobEvent(4.0, "complete", "a", "StartLabelDetection", "SUCCEEDED", 0),
        JobEvent(6.0, "start", "b", "StartLabelDetection", "IN_PROGRESS", 1),
        JobEvent(10.0, "complete", "b", "StartLabelDetection", "SUCCEEDED", 0),
    ]

    # WHEN utilisation and refill latency are computed
    # THEN the slot was busy 80 % of the time and refilled 2 s after the first completion
    assert slot_utilisation(events, slots=1) == pytest.approx(0.8)
    assert completion_to_next_start(events) == [2.0]


def test_simulator_creates_default_clients_lazily(s3: Any, notices: NoticeQueue) -> None:
    # GIVEN a simulator built without clients (inside moto's mock)
    with RekognitionSimulator(SimulatorConfig(job_duration=None)) as sim:
        rekognition = boto3.client("rekognition", endpoint_url=sim.endpoint_url, config=NO_RETRIES)

        # WHEN it reads an image and publishes a notice
        labels = rekognition.detect_labels(Image=s3_image())
        job_id = rekognition.start_label_detection(Video=s3_video(), NotificationChannel=notices.channel)["JobId"]
        sim.complete_job(job_id)

    # THEN its own boto3 clients reached moto's S3 and SNS
    assert labels["Labels"] is not None
    assert [notice["JobId"] for notice in notices.drain()] == [job_id]


def test_simulator_lifecycle_and_raw_protocol(aws: None) -> None:
    # GIVEN a simulator that is not started
    sim = RekognitionSimulator()
    with pytest.raises(RuntimeError):
        _ = sim.endpoint_url

    # WHEN it is started and sent a raw JSON 1.1 request without going through boto3
    url = sim.start()
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"X-Amz-Target": "RekognitionService.GetLabelDetection", "Content-Type": "application/x-amz-json-1.1"},
    )
    with pytest.raises(urllib.request.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    body = json.loads(caught.value.read())
    sim.stop()

    # THEN it answers 400 with the service's error body, and stops cleanly (twice is harmless)
    assert caught.value.code == 400
    assert body["__type"] == "ValidationException"
    assert "Value null at 'jobId'" in body["message"]
    assert url.startswith("http://127.0.0.1:")
    sim.stop()
