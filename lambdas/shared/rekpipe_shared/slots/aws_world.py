"""The slot rules' calls made on AWS: SendTask* and heartbeats on Step Functions, Start* and Get* on
Rekognition, and admission of QUEUED video tasks from the task table.

Start* carries ``ClientRequestToken = JobTag = holder``: a replay returns the same JobId (Rekognition
Developer Guide, "Calling Amazon Rekognition Video operations": ClientRequestToken "prevents the same
job from being accidentally started more than once"), and the notice's JobTag names the holder.
SendTaskHeartbeat "does not in itself create an event in the execution history" (Step Functions API
Reference, https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskHeartbeat.html),
which is what keeps a wait O(1) however long it lasts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore import xform_name
from botocore.exceptions import ClientError

from rekpipe_shared.aws import error_code, error_message
from rekpipe_shared.get_calls import client_call, job_status
from rekpipe_shared.operations import JOB_LIMIT_ERROR, PERMANENT_ERRORS, operation
from rekpipe_shared.quotas import SOURCE_REGION_DEFAULT, VIDEO_JOBS
from rekpipe_shared.slots.exceptions import TransientWorldError
from rekpipe_shared.slots.world import JobEnd, StartResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe_shared.quotas import RekognitionQuotas
    from rekpipe_shared.settings import PipelineSettings
    from rekpipe_shared.slots.state import HolderItem

CLOSED_TOKEN_ERRORS = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})
"""SendTask* errors for a token that is closed (already resumed, timed out, aborted) or unknown: nothing
is left to resume, so a second send is harmless (Step Functions API Reference, SendTaskSuccess errors)."""


class AwsSlotWorld:
    """The dispatcher's calls on AWS.

    Parameters
    ----------
    sfn, rekognition: Any
        boto3 clients. Rekognition's should use legacy retries, so LimitExceededException reaches the
        rules at once instead of being retried silently as throttling.
    settings: PipelineSettings
        Operation options for Start*.
    topic_arn, role_arn: str
        Where Rekognition sends the completion notice, and the role it publishes with.
    admit: Callable[..., int]
        Starts up to n executions from the QUEUED backlog (:class:`rekpipe_shared.slots.admission.Admission`).
    quotas: RekognitionQuotas | None
        The account's quotas, cached and refreshed (``rekpipe_shared.quotas``), for the job quota the stored
        limit follows; None: the stored limit never moves by itself.
    """

    def __init__(
        self, *, sfn: Any, rekognition: Any, settings: PipelineSettings, topic_arn: str, role_arn: str,
        admit: Callable[..., int], quotas: RekognitionQuotas | None = None,
    ) -> None:
        self.sfn, self.rekognition, self.settings = sfn, rekognition, settings
        self.topic_arn, self.role_arn = topic_arn, role_arn
        self._admit = admit
        self.quotas = quotas

    def job_quota(self) -> int | None:
        """The job quota in use, or None when Service Quotas could not be read: the region's documented default
        would then replace a value read before (a throttled or failed read must not move the limit), so the
        stored limit stays as it is (at first the cap, or the default of 20)."""
        if self.quotas is None:
            return None
        quota = self.quotas.get(VIDEO_JOBS)  # never raises: an unreadable Service Quotas gives the region default
        return None if quota.source == SOURCE_REGION_DEFAULT else int(quota.value)

    def heartbeat(self, token: str) -> bool:
        try:
            self.sfn.send_task_heartbeat(taskToken=token)
        except ClientError as error:
            if error_code(error) in CLOSED_TOKEN_ERRORS:
                return False
            raise TransientWorldError("SendTaskHeartbeat", error_code(error)) from error
        return True

    def start_job(self, holder: str, request: dict[str, Any]) -> StartResult:
        task, op = request["task"], operation(request["operation"])
        call = op.video_start_request(
            task["bucket"], task["key"], task.get("version_id"), settings=self.settings, job_tag=holder,
            client_request_token=holder, topic_arn=self.topic_arn, role_arn=self.role_arn,
        )
        try:
            return StartResult(job_id=getattr(self.rekognition, xform_name(op.video_start_api))(**call)["JobId"])
        except ClientError as error:
            code = error_code(error)
            if code == JOB_LIMIT_ERROR:
                return StartResult(limit_exceeded=True)
            if code in PERMANENT_ERRORS:
                return StartResult(error="JobRejectedError", cause=f"{code}: {error_message(error)}")
            raise TransientWorldError(str(op.video_start_api), code) from error

    def job_status(self, holder: HolderItem) -> JobEnd | None:
        try:
            found = job_status(client_call(self.rekognition), holder.request["operation"], holder.job_id)
        except ClientError as error:
            raise TransientWorldError(str(operation(holder.request["operation"]).video_get_api),
                                      error_code(error)) from error
        return JobEnd(holder.job_id, found.status, found.message) if found.ended else None

    def resume(self, token: str, output: dict[str, Any]) -> None:
        self._send("SendTaskSuccess", lambda: self.sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._send("SendTaskFailure",
                   lambda: self.sfn.send_task_failure(taskToken=token, error=error, cause=cause[:32768]))

    def admit(self, count: int, *, cap: int | None = None) -> int:
        return self._admit(count, cap=cap)

    @staticmethod
    def _send(call: str, send: Callable[[], Any]) -> None:
        try:
            send()
        except ClientError as error:
            if error_code(error) not in CLOSED_TOKEN_ERRORS:  # closed: its result is recorded, nothing to do
                raise TransientWorldError(call, error_code(error)) from error
