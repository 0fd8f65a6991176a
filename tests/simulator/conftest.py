"""Fixtures for the Rekognition simulator tests: moto S3/SNS/SQS plus simulator and client factories."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from rekpipe.simulator import RekognitionSimulator, SimClock, SimulatorConfig
from tests.simulator.simdata import BUCKET, JPEG, MP4, NO_RETRIES, NOT_A_VIDEO, PNG, ROLE_ARN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def boto_clients() -> dict[str, Any]:
    """S3/SNS/SQS clients shared by all tests.

    Building an S3 client costs ~50 ms; moto's hook is in every client made after `import moto`
    and answers whichever test's `mock_aws()` is active, so one set serves the whole session.
    """
    return {name: boto3.client(name, **FAKE_CREDENTIALS) for name in ("s3", "sns", "sqs")}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials in us-east-1 and moto's in-process mocks."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_REKOGNITION", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None, boto_clients: dict[str, Any]) -> Any:
    """A moto bucket holding a JPEG, a PNG, an MP4 and a file that is neither."""
    client = boto_clients["s3"]
    client.create_bucket(Bucket=BUCKET)
    for key, body in {"photo.jpg": JPEG, "photo.png": PNG, "clip.mp4": MP4, "notes.txt": NOT_A_VIDEO}.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client


class NoticeQueue:
    """An SNS topic with an SQS subscriber, to read the notices the simulator publishes."""

    def __init__(self, sns: Any, sqs: Any) -> None:
        self.sns = sns
        self.sqs = sqs
        self.topic_arn = self.sns.create_topic(Name="rekognition-notices")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="rekognition-notices")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    @property
    def channel(self) -> dict[str, str]:
        """A Start* ``NotificationChannel`` publishing to this topic."""
        return {"SNSTopicArn": self.topic_arn, "RoleArn": ROLE_ARN}

    def drain(self) -> list[dict[str, Any]]:
        """Every notice delivered so far: the SNS envelope's ``Message``, JSON-decoded."""
        notices: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return notices
            for message in batch:
                envelope = json.loads(message["Body"])
                notices.append(json.loads(envelope["Message"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def notices(aws: None, boto_clients: dict[str, Any]) -> NoticeQueue:
    """Topic + queue capturing completion notices."""
    return NoticeQueue(boto_clients["sns"], boto_clients["sqs"])


@pytest.fixture
def make_sim(s3: Any) -> Iterator[Callable[..., RekognitionSimulator]]:
    """Factory starting simulators (stopped at teardown); kwargs go to SimulatorConfig.

    The simulators share the fixture's S3 client only because creating one costs ~50 ms;
    `test_simulator_creates_default_clients_lazily` covers the default path.
    """
    started: list[RekognitionSimulator] = []

    def factory(clock: SimClock | None = None, **config: Any) -> RekognitionSimulator:
        sim = RekognitionSimulator(SimulatorConfig(**config), s3_client=s3, clock=clock)
        sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def client_for() -> Callable[[RekognitionSimulator], Any]:
    """A Rekognition client pointed at a simulator, without retries."""

    def factory(sim: RekognitionSimulator) -> Any:
        return boto3.client("rekognition", endpoint_url=sim.endpoint_url, config=NO_RETRIES)

    return factory
