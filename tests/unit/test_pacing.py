"""Image pacing (rekpipe_shared.pacing): one shared schedule per API, AIMD on throttling."""

from __future__ import annotations

import threading

import boto3

from rekpipe_shared.pacing import AimdPacer, SharedSchedule
from rekpipe_shared.quotas import RekognitionQuotas


class FakeQuotas(RekognitionQuotas):
    """Quotas fixed by the test (Service Quotas is covered by test_quotas)."""

    def __init__(self, tps: float) -> None:
        super().__init__(["DetectLabels"])
        self.tps = tps

    def value(self, name: str) -> float:
        return self.tps


def test_shared_schedule_gives_concurrent_callers_distinct_evenly_spaced_instants(resources):
    # GIVEN eight callers (eight invocations) sharing one schedule at 50 TPS, none really sleeping
    instants: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        schedule = SharedSchedule(resources.rate_limit_table, boto3_client=boto3.client("dynamodb"),
                                  sleep=lambda _: None)
        for _ in range(6):
            instant = schedule.acquire("DetectLabels", 1 / 50)
            with lock:
                instants.append(instant)

    # WHEN they all take their instants at once (each moto request atomic, as DynamoDB applies a conditional
    # write: rekpipe.emulator.dynamodb_serialization.serialize_dynamodb; without it moto races and repeats an instant)
    from rekpipe.emulator.dynamodb_serialization import serialize_dynamodb

    threads = [threading.Thread(target=caller) for _ in range(8)]
    with serialize_dynamodb():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # THEN every call got its own instant, at least 1/50 s after the one before: never a burst
    ordered = sorted(instants)
    assert len(ordered) == 48
    assert all(b - a >= 1 / 50 - 1e-6 for a, b in zip(ordered, ordered[1:], strict=False))


def test_aimd_pacer_halves_down_on_throttles_and_probes_back_to_the_quota(resources):
    # GIVEN a pacer at a 20 TPS quota
    pacer = AimdPacer(FakeQuotas(20), SharedSchedule(None))

    # WHEN two throttles arrive, then successes
    pacer.throttled("DetectLabels")
    pacer.throttled("DetectLabels")
    lowered = pacer.rate("DetectLabels")
    for _ in range(100):
        pacer.succeeded("DetectLabels")

    # THEN the rate dropped multiplicatively and came back additively, never above the quota
    assert abs(lowered - 20 * 0.7 * 0.7) < 1e-9
    assert pacer.rate("DetectLabels") == 20
