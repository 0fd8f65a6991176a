"""Offline Amazon Rekognition simulator for tests and benchmarks.

The analysis content it returns (labels, faces, text, celebrities, segments...) is SYNTHETIC:
nothing looks at pixels or frames. Values are random but deterministic per (simulator seed,
input bytes), and shaped exactly like the real API's responses so botocore parses them and code
written against them works against Rekognition.

What is modelled faithfully is the behaviour a pipeline has to survive: the JSON 1.1 protocol and
modeled errors (bad S3 objects, formats, sizes, ``ValidationException`` for constraint breaches),
per-operation TPS quotas and injected throttling, the concurrent stored-video job limit,
``ClientRequestToken`` idempotency, asynchronous completion with SNS notices (lost, duplicated or
failed on demand) and ``NextToken`` pagination.

Example
-------
>>> with mock_aws(), RekognitionSimulator(SimulatorConfig(seed=1)) as sim:  # doctest: +SKIP
...     client = boto3.client("rekognition", endpoint_url=sim.endpoint_url)
...     client.detect_labels(Image={"S3Object": {"Bucket": "media", "Name": "cat.jpg"}})
"""

from __future__ import annotations

from .clock import SimClock
from .config import SimulatorConfig
from .exceptions import JobStateError, RekognitionServiceError, SimulatorError, UnknownJobError
from .jobs import VideoJob
from .server import RekognitionSimulator
from .stats import CallRecord, JobEvent, SimulatorStats, completion_to_next_start, slot_utilisation

__all__ = [
    "CallRecord",
    "JobEvent",
    "JobStateError",
    "RekognitionServiceError",
    "RekognitionSimulator",
    "SimClock",
    "SimulatorConfig",
    "SimulatorError",
    "SimulatorStats",
    "UnknownJobError",
    "VideoJob",
    "completion_to_next_start",
    "slot_utilisation",
]
