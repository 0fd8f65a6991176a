"""Typed views of what our functions are handed: queue messages, Rekognition's notice, Step Functions state.

Each class is a Powertools ``DictWrapper`` over the dict received (``raw_event`` is that dict, untouched),
so a handler reads named properties, and the shape each sender gives is written down once, beside the
sender it comes from:

- :class:`WorkMessage`: a work-queue message (``rekpipe_shared.routing.route_message``; the video queue's
  admission and wake-ups send its ``task_id`` and ``run`` too);
- :class:`JobNotice`: Rekognition's completion notice, delivered by SNS to an SQS queue;
- :class:`CollectResultsEvent` and :class:`RecordOutcomeEvent`: the payloads the video state machine's
  CollectResults and RecordOutcome states pass (``statemachines/video_analysis.asl.json``), and
  :class:`OperationResult`, one Map iteration's result (its OperationSucceeded / OperationFailed states).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.common import DictWrapper

from rekpipe_shared.schema import STATUS_SUCCEEDED

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


class WorkMessage(DictWrapper):
    """One run of one task, as sent to the image or video queue."""

    @property
    def task_id(self) -> str:
        return str(self["task_id"])

    @property
    def run(self) -> int:
        """The run this message was sent for."""
        return int(self["run"])


class JobNotice(DictWrapper):
    """Rekognition's completion notice: ``JobId``, ``Status`` (SUCCEEDED, FAILED or ERROR), ``API``, ``JobTag``.

    Route on the JobTag (our own record of the job), not on ``API``: documentation examples disagree on it.
    """

    @classmethod
    def from_sqs_record(cls, record: SQSRecord) -> JobNotice:
        """The notice in an SQS message: inside SNS's envelope, or bare when raw message delivery is on."""
        envelope = record.json_body
        if "Message" in envelope:
            return cls(json.loads(record.decoded_nested_sns_event.message))
        return cls(envelope)

    @property
    def job_id(self) -> str | None:
        return self.get("JobId")

    @property
    def job_tag(self) -> str | None:
        return self.get("JobTag")

    @property
    def status(self) -> str | None:
        return self.get("Status")

    @property
    def api(self) -> str | None:
        """The Start* API named by the notice."""
        return self.get("API")


class _VideoTaskState(DictWrapper):
    """A state that carries the execution input's ``task``: task_id, bucket, key, version_id, etag, run and
    the content identities (``start_video_workflow``)."""

    @property
    def task(self) -> dict[str, Any]:
        """The execution's task, as the plain dict the layer's functions take."""
        return dict(self["task"])

    @property
    def task_id(self) -> str:
        return str(self["task"]["task_id"])


class CollectResultsEvent(_VideoTaskState):
    """CollectResults' payload: the task, the operation, the finished job, and the previous page's result."""

    @property
    def operation(self) -> str:
        return str(self["operation"])

    @property
    def job_id(self) -> str:
        """The job RunJob's wait ended with (``{jobId, status, statusMessage}`` from the slot dispatcher)."""
        return str(self["job"]["jobId"])


class OperationResult(DictWrapper):
    """One operation's result from the Map: ``status`` SUCCEEDED with its outputs, or FAILED with its error."""

    @property
    def operation(self) -> str:
        return str(self["operation"])

    @property
    def succeeded(self) -> bool:
        return self.get("status") == STATUS_SUCCEEDED

    @property
    def output_uri(self) -> str:
        """The summary's URI, or the results' prefix."""
        return self.get("summaryUri") or self.get("prefix", "")

    @property
    def error(self) -> Any:
        return self.get("error")

    @property
    def cause(self) -> Any:
        return self.get("cause")


class RecordOutcomeEvent(_VideoTaskState):
    """RecordOutcome's payload: the task and the Map's results."""

    @property
    def run(self) -> Any:
        """The run of this execution, if the input names one."""
        return self["task"].get("run")

    @cached_property
    def results(self) -> list[OperationResult]:
        return [OperationResult(result) for result in self.get("results") or []]
