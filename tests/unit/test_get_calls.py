"""Get* pacing and retries (rekpipe_shared.get_calls) on moto's DynamoDB and the Rekognition simulator."""

from __future__ import annotations

import threading
from collections import Counter

import boto3
import pytest

from rekpipe.samples import mp4_bytes
from rekpipe_shared.exceptions import RekognitionThrottledError
from rekpipe_shared.get_calls import GET_CLIENT_CONFIG, GetCaller, GetRateLimiter


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spreads_calls_under_the_quota_per_window(resources):
    # GIVEN a limiter at 10 TPS on the stack's rate-limit table, and a clock that moves only by sleeping
    fake = FakeTime(1_000.25)
    limiter = GetRateLimiter(resources.rate_limit_table, 10, clock=fake.clock, sleep=fake.sleep)

    # WHEN 25 calls ask for their place one after the other
    slots = [limiter.acquire("GetLabelDetection") for _ in range(25)]

    # THEN no second holds more than 10 calls, they are in order, none was refused, and calls that found
    # their second full waited for the next one instead of calling
    per_second = Counter(int(slot) for slot in slots)
    assert max(per_second.values()) <= 10
    assert sum(per_second.values()) == 25
    assert slots == sorted(slots)
    assert sorted(per_second) == [1000, 1001, 1002]
    assert fake.slept  # the 11th and later calls waited


def test_rate_limiter_shared_by_concurrent_callers_never_exceeds_the_quota(resources):
    # GIVEN one quota of 10 TPS and six callers (six concurrent collections) each with its own limiter
    results: list[float] = []
    lock = threading.Lock()

    def collect() -> None:
        limiter = GetRateLimiter(resources.rate_limit_table, 10, boto3_client=boto3.client("dynamodb"))
        for _ in range(5):
            slot = limiter.acquire("GetContentModeration")
            with lock:
                results.append(slot)

    # WHEN they all call at once (moto applies each DynamoDB request atomically only with the emulator's lock,
    # as DynamoDB does: rekpipe.emulator.dynamodb_serialization.serialize_dynamodb)
    from rekpipe.emulator.dynamodb_serialization import serialize_dynamodb

    with serialize_dynamodb():
        threads = [threading.Thread(target=collect) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    # THEN together they were given at most 10 places per second, and every call got one
    assert len(results) == 30
    assert max(Counter(int(slot) for slot in results).values()) <= 10


def test_rate_limiter_without_its_table_lets_calls_through(aws_env):
    # GIVEN a limiter whose table cannot be reached (pacing must never lose a result)
    from moto import mock_aws

    with mock_aws():
        limiter = GetRateLimiter("missing-table", 5)
        # WHEN / THEN acquire returns at once
        assert limiter.acquire("GetLabelDetection") > 0


def test_get_caller_rides_out_throttling_and_counts_retries(resources, rekognition):
    # GIVEN a finished job whose GetLabelDetection is throttled 5 times in a row
    s3 = boto3.client("s3")
    s3.put_object(Bucket=resources.content_bucket, Key="clip.mp4", Body=mp4_bytes(1))
    client = boto3.client("rekognition")
    job_id = client.start_label_detection(Video={"S3Object": {"Bucket": resources.content_bucket,
                                                              "Name": "clip.mp4"}})["JobId"]
    rekognition.complete_job(job_id, "SUCCEEDED")
    rekognition.inject_errors("GetLabelDetection", "ThrottlingException", times=5)
    caller = GetCaller(boto3.client("rekognition", config=GET_CLIENT_CONFIG),
                       GetRateLimiter(resources.rate_limit_table, 20), base_seconds=0.001, cap_seconds=0.01)

    # WHEN it is read
    response = caller.call("GetLabelDetection", {"JobId": job_id, "MaxResults": 10})

    # THEN it succeeded after exactly 5 retries, all counted
    assert response["JobStatus"] == "SUCCEEDED"
    assert caller.retries == {"ThrottlingException": 5}
    assert rekognition.stats.throttled["GetLabelDetection"] == 5


def test_get_caller_raises_a_named_error_when_retries_run_out(resources, rekognition):
    # GIVEN Get* throttled on every call, and 3 attempts allowed
    rekognition.inject_errors("GetFaceDetection", "ProvisionedThroughputExceededException", times=100)

    caller = GetCaller(boto3.client("rekognition", config=GET_CLIENT_CONFIG), GetRateLimiter(None, 0),
                       max_attempts=3, base_seconds=0.001, cap_seconds=0.01)

    # WHEN / THEN RekognitionThrottledError says which API, job and how many attempts
    with pytest.raises(RekognitionThrottledError) as caught:
        caller.call("GetFaceDetection", {"JobId": "a" * 64})
    assert caught.value.attempts == 3 and caught.value.code == "ProvisionedThroughputExceededException"
    assert "GetFaceDetection" in str(caught.value) and "the job succeeded" in str(caught.value)


def test_rate_limiter_never_waits_past_the_time_it_is_given(resources):
    # GIVEN a 1 TPS limiter whose window is already used up, and a caller with half a second to spare
    fake = FakeTime(2_000.0)
    limiter = GetRateLimiter(resources.rate_limit_table, 1, clock=fake.clock, sleep=fake.sleep)
    limiter.acquire("GetTextDetection")

    # WHEN the next call asks for its place with max_wait 0.5 s
    given = limiter.acquire("GetTextDetection", max_wait=0.5)

    # THEN it goes ahead at once (a throttle would be retried) instead of sleeping into the next window
    assert given == 2_000.0 and fake.slept == []


def test_job_status_asks_for_one_result_and_reads_the_status():
    # GIVEN a Get* call that answers a failed job, and one that answers a running job
    from rekpipe_shared.get_calls import job_status

    asked = []

    def failed(api, request):
        asked.append((api, request))
        return {"JobStatus": "FAILED", "StatusMessage": "Unsupported codec", "Labels": []}

    # WHEN each job's status is asked
    ended = job_status(failed, "labels", "job-1")
    running = job_status(lambda api, request: {"JobStatus": "IN_PROGRESS"}, "labels", "job-2")

    # THEN one page of at most one result was asked of the operation's Get* API, and the status read
    assert asked == [("GetLabelDetection", {"JobId": "job-1", "MaxResults": 1})]
    assert (ended.status, ended.message, ended.ended) == ("FAILED", "Unsupported codec", True)
    assert (running.status, running.message, running.ended) == ("IN_PROGRESS", "", False)
