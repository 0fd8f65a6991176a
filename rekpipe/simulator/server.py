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
from typing import TYPE_CHECKING, Any

import boto3

from . import _content
from ._http import RequestHandler, Server
from ._media import MIN_IMAGE_DIMENSION, MIN_PPE_IMAGE_DIMENSION, check_dimensions, load_image
from ._throttle import TokenBucket
from ._validation import operation_model, validate
from ._video_jobs import VideoJobsMixin
from .clock import SimClock
from .config import MAX_IMAGE_BYTES_INLINE, SimulatorConfig
from .exceptions import RekognitionServiceError
from .jobs import (
    GET_TO_START,
    VIDEO_APIS,
    PaginationTokens,
    VideoJob,
)
from .stats import OK, JobEvent, SimulatorStats

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

TARGET_PREFIX = "RekognitionService."
HTTP_SHUTDOWN_POLL_SECONDS = 0.1
"""How often the idle HTTP loop checks for shutdown (requests are served at once regardless): ``stop()`` waits up to
this long, and an idle simulator wakes 10 times a second."""
PPE_MAX_INLINE_BYTES = 4 * 1024 * 1024  # DetectProtectiveEquipment takes at most 4 MB of raw bytes
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


class RekognitionSimulator(VideoJobsMixin):
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
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Serve on a free loopback port and start the job scheduler; returns `endpoint_url`."""
        if self._server is not None:
            return self.endpoint_url
        handler = type("_BoundHandler", (RequestHandler,), {"simulator": self})
        self._server = Server(("127.0.0.1", 0), handler)
        self._stopping.clear()
        self.clock.add_listener(self._wake.set)
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": HTTP_SHUTDOWN_POLL_SECONDS},
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

    # ------------------------------------------------------------------ test controls

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

