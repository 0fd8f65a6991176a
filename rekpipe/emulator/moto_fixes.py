"""Small, reversible corrections to moto 5.2.5 where it departs from AWS in ways the pipeline sees.

Each fix is applied only while the embedded runtime runs, and ``tests/emulator`` checks that the
patched functions still exist with the expected signatures, so a moto upgrade fails loudly.

1. S3 notices omit ``versionId`` (AWS sends it for versioned buckets; task ids are keyed on it).
2. ``SendTaskFailure`` drops ``cause`` before it reaches the execution (AWS keeps it; the video
   outcome records Rekognition's StatusMessage from it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def _s3_notices_carry_version() -> Callable[[], None]:
    from moto.s3 import notifications

    original = notifications._get_s3_event

    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if version and version != "null":
            event["Records"][0]["s3"]["object"]["versionId"] = version
        event["Records"][0]["s3"]["object"]["sequencer"] = f"{int(time.time() * 1e6):016X}"
        return event

    notifications._get_s3_event = with_version

    def restore() -> None:
        notifications._get_s3_event = original

    return restore


def _send_task_failure_keeps_cause() -> Callable[[], None]:
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.send_task_failure

    def send_task_failure(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure

    def restore() -> None:
        StepFunctionResponse.send_task_failure = original

    return restore


FIXES = (_s3_notices_carry_version, _send_task_failure_keeps_cause)


def install() -> Callable[[], None]:
    """Apply every fix; returns a function that undoes them all."""
    undo = [fix() for fix in FIXES]

    def uninstall() -> None:
        for restore in reversed(undo):
            restore()

    return uninstall
