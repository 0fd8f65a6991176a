"""The simulator: a loopback HTTP server speaking Rekognition's JSON 1.1 protocol.

Lambda handlers reach it through an ordinary boto3 client (``AWS_ENDPOINT_URL_REKOGNITION``), so
botocore's real serialisation, error mapping and retry logic run against it, while S3 and SNS
stay with moto (or whichever clients are passed in).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3

from . import _content
from ._media import MIN_IMAGE_DIMENSION, MIN_PPE_IMAGE_DIMENSION, check_dimensions, load_image, probe_video
from ._throttle import TokenBucket
from ._validation import operation_model, validate
from .clock import SimClock
from .config import MAX_IMAGE_BYTES_INLINE, SimulatorConfig
from .exceptions import JobStateError, RekognitionServiceError, UnknownJobError
from .jobs import (
    FAILED,
    GET_TO_START,
    IN_PROGRESS,
    MAX_RESULTS,
    RESULT_RETENTION,
    SUCCEEDED,
    VIDEO_APIS,
    PaginationTokens,
    VideoJob,
    arrange,
    fingerprint,
)
from .stats import OK, JobEvent, SimulatorStats, completion_to_next_start, slot_utilisation

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

TARGET_PREFIX = "RekognitionService."
PPE_MAX_INLINE_BYTES = 4 * 1024 * 1024  # DetectProtectiveEquipment takes at most 4 MB of raw bytes
UNPLAYABLE_MESSAGE = "Unsupported codec/format."
SIMULATED_FAILURE_MESSAGE = "Simulated failure: unsupported codec"
SIMULATED_ERROR_MESSAGE = "Simulated error: internal processing error"
NO_FACES_MESSAGE = "There are no faces in the image. Should be at least 1."
"""SearchFacesByImage API reference: "If no faces are detected in the input image, SearchFacesByImage
returns an InvalidParameterException error"; the text is the service's."""
DISCONTINUED_APIS = frozenset({"StartPersonTracking", "GetPersonTracking"})
DISCONTINUED_MESSAGE = ("Amazon Rekognition People Pathing was discontinued on October 31, 2025 "
                        "(Rekognition Developer Guide, 'People pathing').")
_THROTTLE_MESSAGES = {
    "ThrottlingException": "Rate exceeded",
    "ProvisionedThroughputExceededException": "Provisioned rate exceeded",
}
_INJECTED_MESSAGES = {
    "InternalServerError": "Amazon Rekognition experienced a service issue. Try your call again.",
    "LimitExceededException": "An Amazon Rekognition service limit was exceeded.",
    "AccessDeniedException": "You are not authorized to perform this action",
}


class _ThrottledError(RekognitionServiceError):
    """A quota or injected throttle (counted separately in the stats)."""


class RekognitionSimulator:
    """Offline stand-in for Amazon Rekognition image and stored-video APIs.

    Analysis content is synthetic (see `rekpipe.simulator`); behaviour around it -- errors,
    quotas, job concurrency, SNS completion notices, pagination -- follows the real service.

    Parameters
    ----------
    config: SimulatorConfig | None
        Behaviour knobs; ``sim.config`` stays live, so tests can change faults mid-run.
    s3_client: Any
        Client used to read images and videos; default ``boto3.client("s3")`` created on first use
        (inside ``moto.mock_aws()`` that is the mock).
    sns_client: Any
        Client used to publish completion notices; default a ``boto3.client("sns")`` in the
        topic's region, created on first use.
    clock: SimClock | None
        Overrides ``config.clock_scale``; pass ``SimClock(scale=0)`` to step time by hand.

    Example
    -------
    >>> with RekognitionSimulator(SimulatorConfig(seed=7)) as sim:  # doctest: +SKIP
    ...     rekognition = boto3.client("rekognition", endpoint_url=sim.endpoint_url)
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        s3_client: Any = None,
        sns_client: Any = None,
        *,
        clock: SimClock | None = None,
        access: Any = None,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self._clock_from_config = clock is None
        self.clock = clock if clock is not None else SimClock(self.config.clock_scale)
        self.stats = SimulatorStats()
        self._s3 = s3_client
        self._sns_default = sns_client
        self.access = access
        """IAM for each request (``rekpipe.emulator.iam.SimulatorAccess``); None answers every caller."""
        self._request = threading.local()
        self._publishers: dict[str, Any] = {}
        self._sns_by_region: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._jobs: dict[str, VideoJob] = {}
        self._request_tokens: dict[tuple[str, str], tuple[str, str, float]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._events: list[JobEvent] = []
        self._lost_notices: list[str] = []
        self._published: list[dict[str, Any]] = []
        self._notice_errors: list[tuple[str, str]] = []
        self._peak_running = 0
        self._publishing = 0  # notices being sent right now; wait_until_idle waits for them too
        self._injected: dict[str, tuple[str, int, str | None]] = {}  # operation -> (code, calls left, message)
        seed = self.config.seed
        self._job_id_rng = random.Random(f"{seed}/job-ids")
        self._throttle_rng = random.Random(f"{seed}/throttle")
        self._request_ids = random.Random(f"{seed}/request-ids")
        self._job_seq = 0
        self._tokens = PaginationTokens(f"rekognition-simulator/{seed}")
        self._handlers: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            **dict.fromkeys(_content.IMAGE_OPERATIONS, self._image_operation),
            **dict.fromkeys(VIDEO_APIS, self._start_job),
            **dict.fromkeys(GET_TO_START, self._get_results),
        }
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Serve on a free loopback port and start the job scheduler; returns `endpoint_url`."""
        if self._server is not None:
            return self.endpoint_url
        handler = type("_BoundHandler", (_RequestHandler,), {"simulator": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._stopping.clear()
        self.clock.add_listener(self._wake.set)
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="rekognition-sim-http",
                daemon=True,
            ),
            threading.Thread(target=self._run_scheduler, name="rekognition-sim-jobs", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        logger.debug("Rekognition simulator listening on %s", self.endpoint_url)
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and scheduling; jobs still running stay IN_PROGRESS."""
        if self._server is None:
            return
        self._stopping.set()
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.clock.remove_listener(self._wake.set)
        self._server = None
        self._threads = []

    def __enter__(self) -> RekognitionSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; only valid after `start`."""
        if self._server is None:
            raise RuntimeError("RekognitionSimulator is not started; call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        """Environment variables that point boto3's Rekognition clients at this simulator."""
        return {"AWS_ENDPOINT_URL_REKOGNITION": self.endpoint_url}

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

    def inject_errors(self, operation: str, code: str, times: int = 1, message: str | None = None) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``code``, before any other check.

        Replaces an earlier injection for the operation; ``times=0`` clears it. Throttling codes
        are counted in ``stats.throttled``; ``InternalServerError`` is sent with HTTP 500, like the
        service, so botocore retries it.

        Parameters
        ----------
        operation: str
            Rekognition operation name, e.g. ``DetectLabels``.
        code: str
            Error code to return, e.g. ``ThrottlingException`` or ``InternalServerError``.
        times: int
            How many calls fail.
        message: str | None
            Error message; a service-like default otherwise.
        """
        if times < 0:
            raise ValueError(f"times must be >= 0, got {times!r}")
        with self._lock:
            if times:
                self._injected[operation] = (code, times, message)
            else:
                self._injected.pop(operation, None)

    def _job(self, job_id: str) -> VideoJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(job_id)
        return job

    # ------------------------------------------------------------------ request handling

    def _now(self) -> float:
        if self._clock_from_config and self.clock.scale != self.config.clock_scale:
            self.clock.set_scale(self.config.clock_scale)
        return self.clock.now()

    def _next_request_id(self) -> str:
        with self._lock:
            return _content.uuid_from(self._request_ids)

    def handle(self, target: str, body: bytes, headers: dict[str, str] | None = None, *, path: str = "/",
               method: str = "POST") -> tuple[int, dict[str, Any]]:
        """Serve one request: ``X-Amz-Target`` value and JSON body -> (HTTP status, JSON payload).

        With :attr:`access` set, the request's signature and the caller's policies are checked first
        (``headers`` must then carry the SigV4 ``Authorization``), and S3 is read as the caller.
        """
        self._request.caller = None
        operation = target.removeprefix(TARGET_PREFIX)
        now = self._now()
        try:
            if self.config.latency:
                time.sleep(self.config.latency)
            model = operation_model(operation) if target.startswith(TARGET_PREFIX) else None
            handler = self._handlers.get(operation)
            if model is None or handler is None:
                raise RekognitionServiceError(
                    "UnknownOperationException", f"Operation {target!r} is not supported by the Rekognition simulator"
                )
            self._apply_injected(operation)
            try:
                params = json.loads(body or b"{}")
            except ValueError as exc:
                raise RekognitionServiceError("SerializationException", "Request body is not valid JSON") from exc
            if not isinstance(params, dict):
                raise RekognitionServiceError("SerializationException", "Request body must be a JSON object")
            if self.access is not None:
                self._request.caller = self._authorize(operation, params, headers or {}, path, method, body)
            self._throttle(operation, now)
            validate(model, params)
            if operation in DISCONTINUED_APIS:
                # The error code AWS now returns is not documented; AccessDeniedException is our choice.
                raise RekognitionServiceError("AccessDeniedException", DISCONTINUED_MESSAGE)
            result = handler(operation, params)
        except RekognitionServiceError as exc:
            self.stats.record(now, operation, exc.code, throttled=isinstance(exc, _ThrottledError))
            status = 500 if exc.code == "InternalServerError" else 400
            return status, {"__type": exc.code, "message": exc.message}
        except Exception as exc:  # a simulator bug: answer like the service's 500 so callers see it
            logger.exception("Rekognition simulator failed on %s", operation)
            self.stats.record(now, operation, "InternalServerError")
            return 500, {"__type": "InternalServerError", "message": f"Simulator error: {exc!r}"}
        self.stats.record(now, operation, OK)
        return 200, result

    def _apply_injected(self, operation: str) -> None:
        with self._lock:
            injected = self._injected.get(operation)
            if injected is None:
                return
            code, left, message = injected
            if left > 1:
                self._injected[operation] = (code, left - 1, message)
            else:
                del self._injected[operation]
        text = message or _THROTTLE_MESSAGES.get(code) or _INJECTED_MESSAGES.get(code, f"Injected {code}")
        error_class = _ThrottledError if code in _THROTTLE_MESSAGES else RekognitionServiceError
        raise error_class(code, text)

    def _throttle(self, operation: str, now: float) -> None:
        config = self.config
        code = config.throttle_error
        with self._lock:
            if config.throttle_rate and self._throttle_rng.random() < config.throttle_rate:
                raise _ThrottledError(code, _THROTTLE_MESSAGES[code])
            rate = config.throttle_rates.get(operation)
            if rate and self._throttle_rng.random() < rate:
                raise _ThrottledError(code, _THROTTLE_MESSAGES[code])
            quota = config.tps_quotas.get(operation)
            if quota is None:
                return
            bucket = self._buckets.setdefault(operation, TokenBucket(quota, now))
            if not bucket.take(quota, now):
                raise _ThrottledError(code, _THROTTLE_MESSAGES[code])

    def _authorize(self, operation: str, params: dict[str, Any], headers: dict[str, str], path: str, method: str,
                   body: bytes) -> Any:
        try:
            return self.access.authorize(operation, params, method=method, path=path, body=body, headers=headers)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if not isinstance(code, str):
                raise
            raise RekognitionServiceError(code, str(exc)) from exc

    def _s3_client(self) -> Any:
        caller = getattr(self._request, "caller", None)
        if caller is not None:
            return self.access.s3_client(caller)  # Rekognition reads S3 with the caller's permissions
        with self._lock:
            if self._s3 is None:
                self._s3 = boto3.client("s3")
            return self._s3

    def _sns_client(self, topic_arn: str) -> Any:
        if self._sns_default is not None:
            return self._sns_default
        parts = topic_arn.split(":")
        region = parts[3] if len(parts) > 3 else ""  # publish in the topic's region, as the service does
        with self._lock:
            if region not in self._sns_by_region:
                self._sns_by_region[region] = boto3.client("sns", region_name=region or None)
            return self._sns_by_region[region]

    def _check_collection(self, collection_id: str) -> None:
        collections = self.config.collections
        if collections is not None and collection_id not in collections:
            raise RekognitionServiceError(
                "ResourceNotFoundException", f"The collection id: {collection_id} does not exist"
            )

    def _image_operation(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "SearchFacesByImage":
            self._check_collection(params["CollectionId"])
        if operation == "DetectCustomLabels":
            versions = self.config.project_versions
            if versions is not None and params["ProjectVersionArn"] not in versions:
                raise RekognitionServiceError(
                    "ResourceNotFoundException", "The requested project version does not exist or is not running"
                )
        max_inline = PPE_MAX_INLINE_BYTES if operation == "DetectProtectiveEquipment" else MAX_IMAGE_BYTES_INLINE
        image = load_image(params.get("Image"), self._s3_client(), max_inline=max_inline)
        minimum = MIN_PPE_IMAGE_DIMENSION if operation == "DetectProtectiveEquipment" else MIN_IMAGE_DIMENSION
        check_dimensions(image, minimum)
        rng = _content.seeded(self.config.seed, operation, image.digest)
        faces = _content.face_count(self.config.seed, image.digest)
        if operation == "SearchFacesByImage" and faces == 0:
            raise RekognitionServiceError("InvalidParameterException", NO_FACES_MESSAGE)
        if operation == "DetectFaces":
            return _content.detect_faces(rng, params, faces)
        return _content.IMAGE_OPERATIONS[operation](rng, params)

    def face_count(self, data: bytes) -> int:
        """How many faces the simulator sees in these image bytes (0 means SearchFacesByImage refuses it)."""
        import hashlib

        return _content.face_count(self.config.seed, hashlib.sha256(data).hexdigest())

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
            wait = 0.1
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


class _Server(ThreadingHTTPServer):
    """Threaded server whose connection errors (a client hanging up) go to the log, not stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("Rekognition simulator connection from %s failed", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, so a boto3 client reuses its connection like it would with AWS."""

    protocol_version = "HTTP/1.1"
    server_version = "RekognitionSimulator"
    timeout = 60  # close idle keep-alive connections so handler threads do not pile up
    # Headers and body go out as two writes; with Nagle on, the second waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    simulator: RekognitionSimulator

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.simulator.handle(self.headers.get("X-Amz-Target", ""), body,
                                                dict(self.headers.items()), path=self.path, method="POST")
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self.simulator._next_request_id())
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
