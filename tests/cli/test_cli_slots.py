"""rekpipe slots on moto: shows the one stored limit, and --limit sends set_limit to the slot FIFO queue,
which the slot dispatcher's rules apply (no redeploy)."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe_shared.slots import SlotRules, decode
from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore
from tests.cli.conftest import create_stack


@pytest.fixture
def slot_queue(pipeline):
    """The slot FIFO queue in the stack's outputs."""
    url = boto3.client("sqs").create_queue(
        QueueName="rekpipe-slots.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    boto3.client("cloudformation").delete_stack(StackName="RekognitionPipeline")
    create_stack({**pipeline.outputs, "SlotQueueUrl": url})
    return url


def test_slots_shows_the_deployed_default_before_any_change(pipeline, slot_queue):
    # GIVEN a slot table never written
    # WHEN `rekpipe slots` runs
    result = CliRunner().invoke(main, ["slots"])
    # THEN it shows the default limit and no slots in use
    assert result.exit_code == 0, result.output
    assert "limit 20  in use 0  waiting 0" in result.output


def test_slots_limit_sends_set_limit_that_the_dispatcher_applies(pipeline, slot_queue):
    # GIVEN the slot queue
    # WHEN `rekpipe slots --limit 7` runs twice (two changes within 5 minutes must both get through)
    for value in (7, 5):
        result = CliRunner().invoke(main, ["slots", "--limit", str(value)])
        assert result.exit_code == 0, result.output
        assert f"Setting the video slot limit to {value}" in result.output
    # THEN two set_limit messages wait in the one message group, in order
    messages = boto3.client("sqs").receive_message(QueueUrl=slot_queue, MaxNumberOfMessages=10,
                                                   AttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["limit"] for m in messages] == [7, 5]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"video-slots"}
    # AND applied by the rules, the stored limit becomes the last one, shown by `rekpipe slots`
    store = DynamoDBSlotStore(pipeline.semaphore_table, default_limit=20)
    admitted: list[int] = []
    # set_limit with no waiters makes no AWS call but admission from the (empty) backlog
    no_backlog = type("NoBacklog", (), {"admit": lambda self, n, cap=None: admitted.append(n) or 0,
                                        "job_quota": lambda self: None})()
    rules = SlotRules(store, world=no_backlog, clock=lambda: 0.0)
    for message in messages:
        rules.handle(decode(message["Body"]))
    assert "limit 5  in use 0  waiting 0" in CliRunner().invoke(main, ["slots"]).output
    assert admitted == [7 + 2, 5 + 2]  # each new limit is filled from the backlog at once (headroom 2)


def test_slots_limit_out_of_range_is_a_usage_error(pipeline, slot_queue):
    # GIVEN a negative limit
    # WHEN it is asked for
    result = CliRunner().invoke(main, ["slots", "--limit", "-1"])
    # THEN click refuses it and nothing is sent
    assert result.exit_code == 2
    assert "Messages" not in boto3.client("sqs").receive_message(QueueUrl=slot_queue)
