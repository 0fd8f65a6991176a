"""Task tokens of waiting StartJob states, keyed by Rekognition JobTag.

The token is stored *before* Start* is called, so a job that finishes at once can never notify
before its token exists. Task tokens can be 2048 characters, too long for a JobTag, so the tag
only names the item. Items expire a week after the job (Rekognition keeps results 7 days).
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from rekpipe_shared.aws import DEFAULT_CONFIG
from rekpipe_shared.tasks import now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JOB_ID_INDEX = "job_id"
CLOSED_TOKEN_ERRORS = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})
"""SendTask* errors for a token that is closed (already resumed, timed out, aborted) or unknown: nothing
is left to resume, so a second send is harmless (Step Functions API Reference, SendTaskSuccess errors)."""
TOKEN_TTL_SECONDS = 8 * 24 * 3600


def job_tag(task_id: str, run: int, operation: str) -> str:
    """Readable, unique per run of an operation, and within JobTag's alphabet ``[a-zA-Z0-9_.\\-:+=/]``."""
    return f"{task_id}.{run}.{operation}"


def client_request_token(task_id: str, run: int, operation: str) -> str:
    """Deterministic idempotency token: a retried Start* returns the same JobId (64 chars max)."""
    return hashlib.sha256(f"{task_id}:{run}:{operation}".encode()).hexdigest()[:64]


class JobTokenStore:
    """Stores and finds the task token waiting on each Rekognition job.

    Parameters
    ----------
    table_name: str
        The job token table (partition key ``job_tag``, GSI ``job_id``).
    boto3_client: DynamoDBClient | None
        Injected client; a default is built when None.
    """

    def __init__(self, table_name: str, *, boto3_client: DynamoDBClient | None = None,
                 boto3_session: boto3.session.Session | None = None) -> None:
        self.table_name = table_name
        self.client = boto3_client or (boto3_session or boto3.session.Session()).client("dynamodb",
                                                                                          config=DEFAULT_CONFIG)

    def put_token(self, tag: str, *, task_token: str, operation: str, task_id: str, execution_arn: str) -> None:
        """Store (or replace, when the wait restarts) the token that this job's notice resumes."""
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "job_tag": {"S": tag},
                "task_token": {"S": task_token},
                "operation": {"S": operation},
                "task_id": {"S": task_id},
                "execution_arn": {"S": execution_arn},
                "stored_at": {"S": now_iso()},
                "expires_at": {"N": str(int(time.time()) + TOKEN_TTL_SECONDS)},
            },
        )

    def set_job_id(self, tag: str, job_id: str) -> None:
        """Record the JobId Start* returned, so a notice can also be matched by JobId."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"job_tag": {"S": tag}},
            UpdateExpression="SET job_id = :j",
            ExpressionAttributeValues={":j": {"S": job_id}},
        )

    def find(self, *, tag: str | None, job_id: str | None) -> dict[str, Any] | None:
        """The token item by JobTag, else by JobId; None for a job this pipeline did not start."""
        if tag:
            item = self.client.get_item(TableName=self.table_name, Key={"job_tag": {"S": tag}},
                                        ConsistentRead=True).get("Item")
            if item:
                return _plain(item)
        if job_id:
            items = self.client.query(
                TableName=self.table_name,
                IndexName=JOB_ID_INDEX,
                KeyConditionExpression="job_id = :j",
                ExpressionAttributeValues={":j": {"S": job_id}},
            ).get("Items", [])
            if items:
                return _plain(items[0])
        return None

    @staticmethod
    def already_notified(item: dict[str, Any], token: str) -> bool:
        """True when this token's notice was sent and claimed (a duplicate notice)."""
        return item.get("notified_token") == token

    def mark_notified(self, tag: str, token: str, status: str) -> bool:
        """Record, once, that this token was resumed; False when it already was.

        Called only *after* the SendTask* call succeeded (or the token proved closed): a claim made
        before the send would turn the redelivery of a failed send into a dropped "duplicate".
        """
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"job_tag": {"S": tag}},
                UpdateExpression="SET notified_token = :t, job_status = :s, notified_at = :now",
                ConditionExpression="attribute_not_exists(notified_token) OR notified_token <> :t",
                ExpressionAttributeValues={":t": {"S": token}, ":s": {"S": status}, ":now": {"S": now_iso()}},
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: next(iter(value.values())) for name, value in item.items()}
