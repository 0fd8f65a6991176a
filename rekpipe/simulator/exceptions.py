"""Errors raised by the Rekognition simulator.

`RekognitionServiceError` never escapes to Python callers: the HTTP layer turns it into the
`{"__type": ..., "message": ...}` body that botocore maps onto the modeled exception classes.
The others are raised by the test-facing methods (`complete_job`, `publish_notice`).
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class for every error the simulator raises."""


class RekognitionServiceError(SimulatorError):
    """A request failed the way the real service would fail it (sent back as HTTP 400).

    Parameters
    ----------
    code: str
        The Rekognition error code, for example ``InvalidS3ObjectException``; botocore picks the
        exception class from it.
    message: str
        Human-readable text, worded like the service's where it is known.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class UnknownJobError(SimulatorError, KeyError):
    """A test-facing method was given a JobId the simulator never issued."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class JobStateError(SimulatorError):
    """A test-facing method was called on a job in the wrong state (e.g. completing it twice)."""

    def __init__(self, job_id: str, status: str, message: str) -> None:
        super().__init__(f"Job {job_id} is {status}: {message}")
        self.job_id = job_id
        self.status = status
