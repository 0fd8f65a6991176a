"""The stored-video half of the simulator: Start*, Get*, the job scheduler, completion notices, and the
inspection and test controls of jobs.

A mixin of :class:`rekpipe.simulator.server.RekognitionSimulator`, which owns the state it reads (``_lock``,
``_jobs``, ``config``, the clock): one simulator answers both halves, as one Rekognition endpoint does.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from . import _content
from ._media import probe_video
from .exceptions import JobStateError, RekognitionServiceError, UnknownJobError
from .jobs import (
    FAILED,
    GET_TO_START,
    IN_PROGRESS,
    MAX_RESULTS,
    RESULT_RETENTION,
    SUCCEEDED,
    VideoJob,
    arrange,
    fingerprint,
)
from .stats import JobEvent, completion_to_next_start, slot_utilisation

if TYPE_CHECKING:
    import random
    import threading

    from .clock import SimClock
    from .config import SimulatorConfig
    from .jobs import PaginationTokens

logger = logging.getLogger("rekpipe.simulator.server")

UNPLAYABLE_MESSAGE = "Unsupported codec/format."
SIMULATED_FAILURE_MESSAGE = "Simulated failure: unsupported codec"
SIMULATED_ERROR_MESSAGE = "Simulated error: internal processing error"
IDLE_SCHEDULER_SECONDS = 1.0
"""The job scheduler's pause while no job runs: a Start* wakes it, so only an idle simulator waits this long."""


class VideoJobsMixin:
    """Stored-video jobs of :class:`RekognitionSimulator` (see the module docstring)."""

    config: SimulatorConfig
    clock: SimClock
    access: Any
    _lock: threading.RLock
    _jobs: dict[str, VideoJob]
    _request_tokens: dict[tuple[str, str], tuple[str, str, float]]
    _events: list[JobEvent]
    _lost_notices: list[str]
    _published: list[dict[str, Any]]
    _notice_errors: list[tuple[str, str]]
    _publishers: dict[str, Any]
    _peak_running: int
    _publishing: int
    _job_id_rng: random.Random
    _job_seq: int
    _tokens: PaginationTokens
    _stopping: threading.Event
    _wake: threading.Event

    if TYPE_CHECKING:  # provided by RekognitionSimulator
        def _now(self) -> float: ...
        def _s3_client(self) -> Any: ...
        def _sns_client(self, topic_arn: str) -> Any: ...
        def _check_collection(self, collection_id: str) -> None: ...

    # ------------------------------------------------------------------ inspection

    @property
    def jobs(self) -> dict[str, VideoJob]:
        """JobId -> live job record (a new dict each time; the records are shared)."""
        with self._lock:
            return dict(self._jobs)

    def running_jobs(self) -> int:
        """Jobs IN_PROGRESS now."""
        with self._lock:
            return sum(job.status == IN_PROGRESS for job in self._jobs.values())

    @property
    def peak_running_jobs(self) -> int:
        """Most jobs ever IN_PROGRESS at once."""
        with self._lock:
            return self._peak_running

    @property
    def job_events(self) -> list[JobEvent]:
        """Start and completion events on the simulated clock, in order."""
        with self._lock:
            return list(self._events)

    @property
    def lost_notices(self) -> list[str]:
        """JobIds whose completion notice was dropped by ``lost_notice_rate``."""
        with self._lock:
            return list(self._lost_notices)

    @property
    def published_notices(self) -> list[dict[str, Any]]:
        """Every notice published: ``{"JobId", "TopicArn", "Message", "MessageId"}``."""
        with self._lock:
            return list(self._published)

    @property
    def notice_errors(self) -> list[tuple[str, str]]:
        """(JobId, error) for notices SNS refused (e.g. the topic does not exist)."""
        with self._lock:
            return list(self._notice_errors)

    def slot_utilisation(self, start: float | None = None, end: float | None = None) -> float:
        """Mean busy fraction of ``max_concurrent_jobs`` slots between the first and last job event."""
        return slot_utilisation(self.job_events, self.config.max_concurrent_jobs, start, end)

    def completion_to_next_start(self) -> list[float]:
        """Simulated seconds from each completion to the next Start* (slot refill latency)."""
        return completion_to_next_start(self.job_events)

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Block up to ``timeout`` real seconds until no job is IN_PROGRESS and every notice is out."""
        deadline = time.monotonic() + timeout
        while self.running_jobs() or self._publishing:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # ------------------------------------------------------------------ test controls

    def complete_job(self, job_id: str, status: str | None = None, message: str | None = None) -> VideoJob:
        """Finish a running job now and publish its notice (subject to ``lost_notice_rate``).

        Parameters
        ----------
        job_id: str
            The job.
        status: str | None
            ``SUCCEEDED``, ``FAILED`` or ``ERROR`` (ERROR: job FAILED, notice says ERROR); None
            decides as the scheduler would (unplayable video or ``failed_job_rate`` -> FAILED).
        message: str | None
            StatusMessage for a failed job.
        """
        if status not in (None, SUCCEEDED, FAILED, "ERROR"):
            raise ValueError(f"status must be None, SUCCEEDED, FAILED or ERROR, got {status!r}")
        job = self._job(job_id)
        if not self._finish(job, status, message):
            raise JobStateError(job_id, job.status, "only IN_PROGRESS jobs can be completed")
        return job

    def publish_notice(self, job_id: str) -> str | None:
        """Publish a finished job's notice again (duplicate-delivery tests); returns the MessageId."""
        job = self._job(job_id)
        if job.status == IN_PROGRESS:
            raise JobStateError(job_id, job.status, "no completion notice before the job finishes")
        if not job.notification_channel:
            raise JobStateError(job_id, job.status, "the job has no NotificationChannel")
        return self._publish(job)

    def _job(self, job_id: str) -> VideoJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        return job

    # ------------------------------------------------------------------ Start* and Get*

    def _start_job(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("ClientRequestToken")
        request_print = fingerprint(params)
        now = self._now()
        if token and (existing := self._idempotent_job(operation, token, request_print, now)):
            return {"JobId": existing}
        if operation == "StartFaceSearch":
            self._check_collection(params["CollectionId"])
        probe = probe_video(params.get("Video"), self._s3_client(), self.config.max_video_bytes)
        publisher = None
        channel = params.get("NotificationChannel") or {}
        if self.access is not None and channel.get("RoleArn"):
            try:  # the service assumes the role now, and publishes with it when the job ends
                publisher = self.access.publisher(channel["RoleArn"], channel["SNSTopicArn"])
            except Exception as exc:
                raise RekognitionServiceError(str(getattr(exc, "code", "AccessDeniedException")), str(exc)) from exc
        config = self.config
        with self._lock:
            if token and (existing := self._idempotent_job(operation, token, request_print, now)):
                return {"JobId": existing}  # a concurrent twin won the race
            running = sum(job.status == IN_PROGRESS for job in self._jobs.values())
            if running >= config.max_concurrent_jobs:
                raise RekognitionServiceError(
                    "LimitExceededException",
                    f"Limit of {config.max_concurrent_jobs} concurrent stored-video jobs exceeded; "
                    "retry when a running job completes",
                )
            self._job_seq += 1
            draws = _content.seeded(config.seed, "job", self._job_seq)
            duration = None if config.job_duration is None else draws.uniform(*config.job_duration)
            job = VideoJob(
                job_id=f"{self._job_id_rng.getrandbits(256):064x}",
                operation=operation,
                location=probe.location,
                params=params,
                created_at=now,
                duration=duration,
                playable=probe.playable,
                video_digest=probe.digest,
                item_count=config.video_result_items,
                fail_draw=draws.random(),
                lost_draw=draws.random(),
            )
            self._jobs[job.job_id] = job
            if publisher is not None:
                self._publishers[job.job_id] = publisher
            if token:
                self._request_tokens[(operation, token)] = (job.job_id, request_print, now)
            self._peak_running = max(self._peak_running, running + 1)
            self._events.append(JobEvent(now, "start", job.job_id, operation, IN_PROGRESS, running + 1))
        self._wake.set()
        return {"JobId": job.job_id}

    def _idempotent_job(self, operation: str, token: str, request_print: str, now: float) -> str | None:
        with self._lock:
            entry = self._request_tokens.get((operation, token))
        if entry is None or now - entry[2] > RESULT_RETENTION:
            return None
        if entry[1] != request_print:
            raise RekognitionServiceError(
                "IdempotentParameterMismatchException",
                "A ClientRequestToken input parameter was reused with an operation, but at least one of the "
                "other input parameters is different from the previous call to the operation.",
            )
        return entry[0]

    def _get_results(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        now = self._now()
        with self._lock:
            job = self._jobs.get(params["JobId"])
        expired = job is not None and job.completed_at is not None and now - job.completed_at > RESULT_RETENTION
        if job is None or job.operation != GET_TO_START[operation] or expired:
            # The service answers a JobId it does not know (or of another API) as a bad parameter.
            raise RekognitionServiceError("InvalidParameterException", "Request has invalid parameters")
        api = job.api
        max_results = min(params.get("MaxResults") or MAX_RESULTS, MAX_RESULTS)
        offset = self._tokens.decode(job.job_id, params["NextToken"], now) if params.get("NextToken") else 0
        response: dict[str, Any] = {"JobStatus": job.status}
        if job.status == FAILED:
            response["StatusMessage"] = job.status_message
        items: list[dict[str, Any]] = []
        if job.status == SUCCEEDED:
            metadata = job.metadata()
            response["VideoMetadata"] = [metadata] if operation == "GetSegmentDetection" else metadata
            items = arrange(api, job.items(self.config.seed), params.get("SortBy"), params.get("AggregateBy"))
        if offset + max_results < len(items):
            response["NextToken"] = self._tokens.encode(job.job_id, offset + max_results, now)
        response[api.items_key] = items[offset : offset + max_results]
        if api.model_version_key:
            response[api.model_version_key] = api.model_version
        if operation == "GetSegmentDetection" and job.status == SUCCEEDED:
            response["AudioMetadata"] = [
                {
                    "Codec": "aac",
                    "DurationMillis": response["VideoMetadata"][0]["DurationMillis"],
                    "SampleRate": 48000,
                    "NumberOfChannels": 2,
                }
            ]
            response["SelectedSegmentTypes"] = [
                {"Type": kind, "ModelVersion": _content.SEGMENT_MODEL_VERSION}
                for kind in dict.fromkeys(job.params["SegmentTypes"])
            ]
        response["JobId"] = job.job_id
        response["Video"] = job.location.as_video()
        if job.job_tag is not None:
            response["JobTag"] = job.job_tag
        if api.aggregates:
            response["GetRequestMetadata"] = {
                "SortBy": params.get("SortBy") or "TIMESTAMP",
                "AggregateBy": params.get("AggregateBy") or "TIMESTAMPS",
            }
        return response

    # ------------------------------------------------------------------ job completion

    def _run_scheduler(self) -> None:
        while not self._stopping.is_set():
            now = self._now()
            with self._lock:
                running = [job for job in self._jobs.values() if job.status == IN_PROGRESS and job.due_at is not None]
            next_due = None
            for job in sorted(running, key=lambda j: j.due_at or 0.0):
                if job.due_at is not None and job.due_at <= now:
                    try:
                        self._finish(job, None, None)
                    except Exception:  # keep scheduling the others; the failure is logged
                        logger.exception("Rekognition simulator could not complete job %s", job.job_id)
                elif next_due is None:
                    next_due = job.due_at
            # Sleep exactly until the next completion, but re-check often enough to follow
            # clock-scale changes; clock.advance() and new jobs wake the loop early.
            wait = 0.1 if running else IDLE_SCHEDULER_SECONDS  # a new job wakes the loop at once
            if next_due is not None and (real := self.clock.real_seconds(next_due - now)) is not None:
                wait = min(max(real, 0.0005), 0.1)
            self._wake.wait(wait)
            self._wake.clear()

    def _finish(self, job: VideoJob, status: str | None, message: str | None) -> bool:
        config = self.config
        with self._lock:
            if job.status != IN_PROGRESS:
                return False
            now = self._now()
            if status is None:
                if not job.playable:
                    status, message = FAILED, UNPLAYABLE_MESSAGE
                elif job.fail_draw < config.failed_job_rate:
                    status, message = FAILED, SIMULATED_FAILURE_MESSAGE
                else:
                    status = SUCCEEDED
            job.notice_status = status
            job.status = SUCCEEDED if status == SUCCEEDED else FAILED
            if job.status == FAILED:
                job.status_message = message or (
                    SIMULATED_ERROR_MESSAGE if status == "ERROR" else SIMULATED_FAILURE_MESSAGE
                )
            job.completed_at = now
            running = sum(j.status == IN_PROGRESS for j in self._jobs.values())
            self._events.append(JobEvent(now, "complete", job.job_id, job.operation, job.status, running))
            notify = bool(job.notification_channel)
            if notify and job.lost_draw < config.lost_notice_rate:
                job.notice_lost = True
                self._lost_notices.append(job.job_id)
                notify = False
            if notify:
                self._publishing += 1
        if notify:
            try:
                self._publish(job)
            finally:
                with self._lock:
                    self._publishing -= 1
        return True

    def _publish(self, job: VideoJob) -> str | None:
        channel = job.notification_channel or {}
        topic_arn = channel["SNSTopicArn"]
        completed_at = job.completed_at if job.completed_at is not None else self._now()
        message = json.dumps(job.notice(int(completed_at * 1000)), separators=(",", ":"))
        try:
            sns = self._publishers.get(job.job_id) or self._sns_client(topic_arn)
            message_id = sns.publish(TopicArn=topic_arn, Message=message)["MessageId"]
        except Exception as exc:  # the service also drops notices it cannot deliver
            logger.warning("Rekognition simulator could not publish the notice of %s: %s", job.job_id, exc)
            with self._lock:
                self._notice_errors.append((job.job_id, repr(exc)))
            return None
        with self._lock:
            job.notices_published += 1
            self._published.append(
                {"JobId": job.job_id, "TopicArn": topic_arn, "Message": message, "MessageId": message_id}
            )
        return message_id

