"""Stored-video (asynchronous) operations of the Rekognition simulator: jobs, notices, pagination."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from rekpipe.simulator import JobStateError, RekognitionSimulator, SimClock, UnknownJobError
from tests.simulator.simdata import BUCKET, s3_video

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.simulator.conftest import NoticeQueue

# Start operation -> (Get operation, extra Start arguments, item key, members every item carries)
VIDEO_APIS: dict[str, tuple[str, dict[str, Any], str, set[str]]] = {
    "start_label_detection": ("get_label_detection", {"MinConfidence": 60}, "Labels", {"Timestamp", "Label"}),
    "start_face_detection": ("get_face_detection", {"FaceAttributes": "ALL"}, "Faces", {"Timestamp", "Face"}),
    "start_content_moderation": (
        "get_content_moderation",
        {},
        "ModerationLabels",
        {"Timestamp", "ModerationLabel"},
    ),
    "start_text_detection": ("get_text_detection", {}, "TextDetections", {"Timestamp", "TextDetection"}),
    "start_celebrity_recognition": (
        "get_celebrity_recognition",
        {},
        "Celebrities",
        {"Timestamp", "Celebrity"},
    ),
    "start_segment_detection": (
        "get_segment_detection",
        {"SegmentTypes": ["TECHNICAL_CUE", "SHOT"]},
        "Segments",
        {
            "Type",
            "StartTimestampMillis",
            "EndTimestampMillis",
            "DurationMillis",
            "StartTimecodeSMPTE",
            "EndTimecodeSMPTE",
            "DurationSMPTE",
            "StartFrameNumber",
            "EndFrameNumber",
            "DurationFrames",
        },
    ),
    "start_face_search": (
        "get_face_search",
        {"CollectionId": "staff", "FaceMatchThreshold": 0},
        "Persons",
        {"Timestamp", "Person", "FaceMatches"},
    ),
}


@pytest.fixture
def manual(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> Callable[..., tuple[RekognitionSimulator, Any]]:
    """Factory: a simulator whose jobs wait for ``complete_job`` and a client for it."""

    def factory(**config: Any) -> tuple[RekognitionSimulator, Any]:
        sim = make_sim(job_duration=None, **config)
        return sim, client_for(sim)

    return factory


def test_start_job_returns_job_id_and_reports_in_progress(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], notices: NoticeQueue
) -> None:
    # GIVEN a simulator and an MP4 in S3
    sim, rekognition = manual()

    # WHEN label detection starts with a tag and a notification channel
    job_id = rekognition.start_label_detection(
        Video=s3_video(), JobTag="batch-7:item-1", NotificationChannel=notices.channel
    )["JobId"]
    response = rekognition.get_label_detection(JobId=job_id)

    # THEN the JobId looks like the service's and the job is IN_PROGRESS, echoing tag and video
    assert re.fullmatch(r"[0-9a-f]{64}", job_id)
    assert response["JobStatus"] == "IN_PROGRESS"
    assert response["JobTag"] == "batch-7:item-1"
    assert response["Video"] == s3_video()
    assert response["Labels"] == []
    assert sim.jobs[job_id].operation == "StartLabelDetection"
    assert sim.running_jobs() == 1


@pytest.mark.parametrize("start", sorted(VIDEO_APIS))
def test_video_api_results_parse_with_expected_fields(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], start: str
) -> None:
    # GIVEN a finished job of each stored-video API
    get, extra, items_key, item_members = VIDEO_APIS[start]
    sim, rekognition = manual(video_result_items=30)
    job_id = getattr(rekognition, start)(Video=s3_video(), JobTag="t", **extra)["JobId"]
    sim.complete_job(job_id)

    # WHEN its results are fetched
    response = getattr(rekognition, get)(JobId=job_id)

    # THEN they carry status, metadata and 30 time-ordered items with the modeled members
    assert response["JobStatus"] == "SUCCEEDED"
    items = response[items_key]
    assert len(items) == 30
    assert all(item_members <= set(item) for item in items)
    time_key = "StartTimestampMillis" if items_key == "Segments" else "Timestamp"
    assert [item[time_key] for item in items] == sorted(item[time_key] for item in items)
    metadata = response["VideoMetadata"][0] if items_key == "Segments" else response["VideoMetadata"]
    assert metadata["Codec"] == "h264"
    assert {"DurationMillis", "Format", "FrameRate", "FrameHeight", "FrameWidth"} <= set(metadata)
    assert all(item[time_key] <= metadata["DurationMillis"] for item in items)
    assert response["JobId"] == job_id and response["JobTag"] == "t"


def test_segment_detection_reports_both_segment_types(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN a finished segment job asking for shots and technical cues
    sim, rekognition = manual(video_result_items=20)
    job_id = rekognition.start_segment_detection(Video=s3_video(), SegmentTypes=["TECHNICAL_CUE", "SHOT"])["JobId"]
    sim.complete_job(job_id)

    # WHEN the segments are fetched
    response = rekognition.get_segment_detection(JobId=job_id)

    # THEN each segment has the sub-structure of its type, and the selected types are echoed
    assert {s["Type"] for s in response["SelectedSegmentTypes"]} == {"TECHNICAL_CUE", "SHOT"}
    assert response["AudioMetadata"][0]["Codec"]
    for segment in response["Segments"]:
        assert ("ShotSegment" in segment) == (segment["Type"] == "SHOT")
        assert ("TechnicalCueSegment" in segment) == (segment["Type"] == "TECHNICAL_CUE")
        assert segment["DurationMillis"] == segment["EndTimestampMillis"] - segment["StartTimestampMillis"]
    shots = [s["ShotSegment"]["Index"] for s in response["Segments"] if s["Type"] == "SHOT"]
    assert shots == list(range(len(shots)))


def test_start_missing_video_raises_invalid_s3_object(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN no object under the key
    sim, rekognition = manual()

    # WHEN a job is started on it
    with pytest.raises(rekognition.exceptions.InvalidS3ObjectException):
        rekognition.start_label_detection(Video=s3_video("missing.mp4"))

    # THEN no job was created
    assert sim.jobs == {}


def test_person_tracking_is_refused_as_discontinued(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN a simulator (People Pathing was discontinued on 2025-10-31)
    sim, rekognition = manual()

    # WHEN StartPersonTracking or GetPersonTracking is called
    # THEN both are refused, naming the discontinuation, and no job exists
    with pytest.raises(rekognition.exceptions.AccessDeniedException) as caught:
        rekognition.start_person_tracking(Video=s3_video())
    assert "discontinued" in caught.value.response["Error"]["Message"]
    with pytest.raises(rekognition.exceptions.AccessDeniedException):
        rekognition.get_person_tracking(JobId="0" * 64)
    assert sim.jobs == {}


def test_get_apis_have_a_default_tps_quota_that_throttles(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN a default simulator on a frozen clock (Get* quota 20 TPS per API, as in us-east-1)
    clock = SimClock(scale=0)
    sim, rekognition = manual(clock=clock)
    assert sim.config.tps_quotas["GetLabelDetection"] == 20
    job_id = rekognition.start_label_detection(Video=s3_video())["JobId"]

    # WHEN GetLabelDetection is called 21 times within one simulated second, then after a second
    answers = []
    for _ in range(21):
        try:
            rekognition.get_label_detection(JobId=job_id)
            answers.append("ok")
        except rekognition.exceptions.ThrottlingException:
            answers.append("throttled")
    clock.advance(1.0)
    later = rekognition.get_label_detection(JobId=job_id)

    # THEN the 21st is throttled, and the quota refills
    assert answers == ["ok"] * 20 + ["throttled"]
    assert later["JobStatus"] == "IN_PROGRESS"
    assert sim.stats.throttled.get("GetLabelDetection") == 1


def test_start_oversized_video_raises_video_too_large(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN a size limit below the fixture MP4's size (instead of uploading 10 GB)
    _, rekognition = manual(max_video_bytes=100)

    # WHEN a job is started
    # THEN VideoTooLargeException is raised
    with pytest.raises(rekognition.exceptions.VideoTooLargeException):
        rekognition.start_face_detection(Video=s3_video())


def test_start_with_same_client_request_token_is_idempotent(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN a job started with a ClientRequestToken
    sim, rekognition = manual()
    first = rekognition.start_label_detection(Video=s3_video(), ClientRequestToken="item-0001")["JobId"]

    # WHEN the same request is retried, and the token is reused by another API and with other parameters
    again = rekognition.start_label_detection(Video=s3_video(), ClientRequestToken="item-0001")["JobId"]
    other_api = rekognition.start_face_detection(Video=s3_video(), ClientRequestToken="item-0001")["JobId"]
    with pytest.raises(rekognition.exceptions.IdempotentParameterMismatchException):
        rekognition.start_label_detection(Video=s3_video(), ClientRequestToken="item-0001", JobTag="changed")

    # THEN the retry got the same job and nothing new started, while the token is per API
    assert again == first
    assert other_api != first
    assert len(sim.jobs) == 2
    assert sim.jobs[first].client_request_token == "item-0001"


def test_client_request_token_pattern_is_enforced(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN a token with a character the service rejects (botocore does not check patterns)
    _, rekognition = manual()

    # WHEN a job is started with it
    with pytest.raises(ClientError) as caught:
        rekognition.start_label_detection(Video=s3_video(), ClientRequestToken="s3://bucket/key")

    # THEN a ValidationException names the member
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "clientRequestToken" in caught.value.response["Error"]["Message"]


def test_start_beyond_max_concurrent_jobs_raises_limit_exceeded(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN two running jobs with a limit of two
    sim, rekognition = manual(max_concurrent_jobs=2)
    first = rekognition.start_label_detection(Video=s3_video())["JobId"]
    rekognition.start_text_detection(Video=s3_video())

    # WHEN a third starts
    with pytest.raises(rekognition.exceptions.LimitExceededException):
        rekognition.start_face_detection(Video=s3_video())

    # THEN it fails until a slot frees up, and the peak never exceeded the limit
    sim.complete_job(first)
    rekognition.start_face_detection(Video=s3_video())
    assert sim.peak_running_jobs == 2
    assert sim.stats.errors["StartFaceDetection"]["LimitExceededException"] == 1


def test_completion_publishes_notice_in_service_format(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], notices: NoticeQueue
) -> None:
    # GIVEN a job with a notification channel and a tag
    sim, rekognition = manual()
    job_id = rekognition.start_label_detection(Video=s3_video(), JobTag="run-1", NotificationChannel=notices.channel)[
        "JobId"
    ]

    # WHEN it completes
    job = sim.complete_job(job_id)

    # THEN exactly one notice in Rekognition's format reaches the SQS subscriber
    assert notices.drain() == [
        {
            "JobId": job_id,
            "Status": "SUCCEEDED",
            "API": "StartLabelDetection",
            "JobTag": "run-1",
            "Timestamp": int(job.completed_at * 1000),
            "Video": {"S3ObjectName": "clip.mp4", "S3Bucket": BUCKET},
        }
    ]
    assert sim.published_notices[0]["TopicArn"] == notices.topic_arn


def test_scheduler_completes_jobs_after_simulated_duration(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any], notices: NoticeQueue
) -> None:
    # GIVEN jobs lasting 30 simulated seconds on a frozen clock
    clock = SimClock(scale=0)
    sim = make_sim(clock=clock, job_duration=(30.0, 30.0))
    rekognition = client_for(sim)
    job_id = rekognition.start_content_moderation(Video=s3_video(), NotificationChannel=notices.channel)["JobId"]

    # WHEN 29 and then 30 simulated seconds pass
    clock.advance(29.0)
    time.sleep(0.05)
    still_running = rekognition.get_content_moderation(JobId=job_id)["JobStatus"]
    clock.advance(1.0)
    assert sim.wait_until_idle(timeout=5)

    # THEN the job completes only at its duration and its notice is stamped with the simulated time
    assert still_running == "IN_PROGRESS"
    assert rekognition.get_content_moderation(JobId=job_id)["JobStatus"] == "SUCCEEDED"
    events = sim.job_events
    assert [e.kind for e in events] == ["start", "complete"]
    assert events[1].sim_time - events[0].sim_time == pytest.approx(30.0)
    assert notices.drain()[0]["Timestamp"] == int(events[1].sim_time * 1000)


def test_scaled_clock_runs_jobs_faster_than_real_time(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN 60 simulated seconds per real second and 6-second jobs
    sim = make_sim(clock_scale=60, job_duration=(6.0, 6.0))
    rekognition = client_for(sim)

    # WHEN three jobs start
    for _ in range(3):
        rekognition.start_label_detection(Video=s3_video())
    started = time.monotonic()

    # THEN they finish in about a tenth of a real second
    assert sim.wait_until_idle(timeout=3)
    assert time.monotonic() - started < 1.0
    assert all(job.status == "SUCCEEDED" for job in sim.jobs.values())


def test_lost_notice_is_not_published_but_status_is_reported(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], notices: NoticeQueue
) -> None:
    # GIVEN every notice set to be lost
    sim, rekognition = manual(lost_notice_rate=1.0)
    job_id = rekognition.start_label_detection(Video=s3_video(), NotificationChannel=notices.channel)["JobId"]

    # WHEN the job completes
    sim.complete_job(job_id)

    # THEN no notice arrives, the loss is recorded, and Get* still reports the outcome
    assert notices.drain() == []
    assert sim.lost_notices == [job_id]
    assert rekognition.get_label_detection(JobId=job_id)["JobStatus"] == "SUCCEEDED"

    # AND a test can deliver it (late) by hand
    sim.publish_notice(job_id)
    assert [n["JobId"] for n in notices.drain()] == [job_id]


def test_publish_notice_sends_a_duplicate(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], notices: NoticeQueue
) -> None:
    # GIVEN a completed job whose notice was delivered
    sim, rekognition = manual()
    job_id = rekognition.start_text_detection(Video=s3_video(), NotificationChannel=notices.channel)["JobId"]
    sim.complete_job(job_id)

    # WHEN the notice is published again
    sim.publish_notice(job_id)

    # THEN the subscriber sees two identical notices
    first, second = notices.drain()
    assert first == second
    assert sim.jobs[job_id].notices_published == 2


def test_failed_jobs_report_failed_status_and_notice(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], notices: NoticeQueue
) -> None:
    # GIVEN a job started while failures are off, then every job set to fail (mid-run)
    sim, rekognition = manual()
    job_id = rekognition.start_label_detection(Video=s3_video(), NotificationChannel=notices.channel)["JobId"]
    sim.config.failed_job_rate = 1.0

    # WHEN it completes
    sim.complete_job(job_id)
    response = rekognition.get_label_detection(JobId=job_id)

    # THEN Get* says FAILED with a message and no items, and the notice says FAILED
    assert response["JobStatus"] == "FAILED"
    assert response["StatusMessage"] == "Simulated failure: unsupported codec"
    assert response["Labels"] == []
    assert "VideoMetadata" not in response
    assert notices.drain()[0]["Status"] == "FAILED"


def test_unplayable_video_fails_and_error_status_can_be_forced(
    manual: Callable[..., tuple[RekognitionSimulator, Any]], notices: NoticeQueue
) -> None:
    # GIVEN a job on a text file and one on a real MP4
    sim, rekognition = manual()
    text_job = rekognition.start_label_detection(Video=s3_video("notes.txt"), NotificationChannel=notices.channel)
    mp4_job = rekognition.start_label_detection(Video=s3_video(), NotificationChannel=notices.channel)

    # WHEN the first completes on its own terms and the second is forced to ERROR
    sim.complete_job(text_job["JobId"])
    sim.complete_job(mp4_job["JobId"], status="ERROR")

    # THEN the text file fails as unsupported, and ERROR shows as FAILED in Get* but ERROR in the notice
    failed = rekognition.get_label_detection(JobId=text_job["JobId"])
    assert (failed["JobStatus"], failed["StatusMessage"]) == ("FAILED", "Unsupported codec/format.")
    assert rekognition.get_label_detection(JobId=mp4_job["JobId"])["JobStatus"] == "FAILED"
    assert [n["Status"] for n in notices.drain()] == ["FAILED", "ERROR"]


def test_get_results_paginate_over_three_pages(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN a finished job with 2500 result items
    sim, rekognition = manual(video_result_items=2500)
    job_id = rekognition.start_label_detection(Video=s3_video())["JobId"]
    sim.complete_job(job_id)

    # WHEN the pages are walked with MaxResults 1000 (and a too-large MaxResults is tried)
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = rekognition.get_label_detection(JobId=job_id, MaxResults=1000, **kwargs)
        pages.append(page["Labels"])
        token = page.get("NextToken")
        if not token:
            break
    capped = rekognition.get_label_detection(JobId=job_id, MaxResults=5000)

    # THEN there are three pages of 1000, 1000 and 500 items in timestamp order, and 1000 is the cap
    assert [len(page) for page in pages] == [1000, 1000, 500]
    stamps = [item["Timestamp"] for page in pages for item in page]
    assert stamps == sorted(stamps)
    assert len(capped["Labels"]) == 1000


def test_get_results_reject_forged_pagination_token(manual: Callable[..., tuple[RekognitionSimulator, Any]]) -> None:
    # GIVEN two finished jobs with more than one page
    sim, rekognition = manual(video_result_items=10)
    first = rekognition.start_face_detection(Video=s3_video())["JobId"]
    second = rekognition.start_face_detection(Video=s3_video())["JobId"]
    sim.complete_job(first)
    sim.complete_job(second)
    token = rekognition.get_face_detection(JobId=first, MaxResults=4)["NextToken"]

    # WHEN a garbage token, and the first job's token on the second job, are used
    # THEN both raise InvalidPaginationTokenException
    with pytest.raises(rekognition.exceptions.InvalidPaginationTokenException):
        rekognition.get_face_detection(JobId=first, NextToken="bm90LWEtdG9rZW4=")
    with pytest.raises(rekognition.exceptions.InvalidPaginationTokenException):
        rekognition.get_face_detection(JobId=second, NextToken=token)


def test_get_results_unknown_job_raises_invalid_parameter(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN a label-detection job
    _, rekognition = manual()
    job_id = rekognition.start_label_detection(Video=s3_video())["JobId"]

    # WHEN results are requested for an id never issued, or from another API's Get*
    # THEN InvalidParameterException is raised
    with pytest.raises(rekognition.exceptions.InvalidParameterException):
        rekognition.get_label_detection(JobId="0" * 64)
    with pytest.raises(rekognition.exceptions.InvalidParameterException):
        rekognition.get_face_detection(JobId=job_id)


def test_get_label_detection_sorts_by_name_and_aggregates(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN a finished label job
    sim, rekognition = manual(video_result_items=40)
    job_id = rekognition.start_label_detection(Video=s3_video())["JobId"]
    sim.complete_job(job_id)

    # WHEN results are sorted by NAME and aggregated by SEGMENTS
    response = rekognition.get_label_detection(JobId=job_id, SortBy="NAME", AggregateBy="SEGMENTS")

    # THEN items are in name order with segment timing, and the request metadata echoes the choice
    names = [item["Label"]["Name"] for item in response["Labels"]]
    assert names == sorted(names)
    assert all("DurationMillis" in item for item in response["Labels"])
    assert response["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}


def test_start_face_search_unknown_collection_raises_resource_not_found(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN only the "staff" collection
    _, rekognition = manual(collections={"staff"})

    # WHEN a face search starts against another one
    # THEN ResourceNotFoundException is raised
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.start_face_search(Video=s3_video(), CollectionId="visitors")


def test_same_seed_gives_same_job_ids_and_results(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN two simulators with the same seed
    runs = []
    for _ in range(2):
        sim = make_sim(seed=99, job_duration=None, video_result_items=15)
        rekognition = client_for(sim)

        # WHEN the same job runs on each
        job_id = rekognition.start_celebrity_recognition(Video=s3_video())["JobId"]
        sim.complete_job(job_id)
        runs.append((job_id, rekognition.get_celebrity_recognition(JobId=job_id)["Celebrities"]))

    # THEN job ids and results are identical
    assert runs[0] == runs[1]


def test_job_event_log_measures_slot_use(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN two job slots, a frozen clock and manual completion
    clock = SimClock(scale=0)
    sim = make_sim(clock=clock, job_duration=None, max_concurrent_jobs=2)
    rekognition = client_for(sim)

    # WHEN job A runs 0-10 s, job B from 0 s on, and job C starts 2 s after A completes
    job_a = rekognition.start_label_detection(Video=s3_video())["JobId"]
    rekognition.start_label_detection(Video=s3_video())
    clock.advance(10)
    sim.complete_job(job_a)
    clock.advance(2)
    rekognition.start_label_detection(Video=s3_video())

    # THEN refill latency is 2 s and over the first 20 s the slots were busy 38 of 40 slot-seconds
    assert sim.completion_to_next_start() == [pytest.approx(2.0)]
    start = sim.job_events[0].sim_time
    assert sim.slot_utilisation(start, start + 20) == pytest.approx(38 / 40)
    assert sim.peak_running_jobs == 2


def test_complete_job_rejects_unknown_and_finished_jobs(
    manual: Callable[..., tuple[RekognitionSimulator, Any]],
) -> None:
    # GIVEN a completed job
    sim, rekognition = manual()
    job_id = rekognition.start_label_detection(Video=s3_video())["JobId"]
    sim.complete_job(job_id)

    # WHEN it is completed again, or an unknown job is completed
    # THEN clear errors are raised
    with pytest.raises(JobStateError):
        sim.complete_job(job_id)
    with pytest.raises(UnknownJobError):
        sim.complete_job("f" * 64)
    with pytest.raises(JobStateError):
        sim.publish_notice(job_id)  # no NotificationChannel
