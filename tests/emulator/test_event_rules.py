"""The execution status rule lists executions only when one has ended since its last listing."""

from __future__ import annotations

import json
import time

import boto3
from moto import mock_aws

from rekpipe.emulator.event_rules import ended_executions

ROLE = "arn:aws:iam::123456789012:role/states"
WAIT_AS_TOLD = {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.seconds", "End": True}}}
"""Waits the input's ``seconds``: 0 ends at once, 600 cannot end during a test however loaded the machine is."""
NOW, NEVER = json.dumps({"seconds": 0}), json.dumps({"seconds": 600})


def _wait_ended(sfn, execution_arn: str) -> None:
    deadline = time.monotonic() + 60
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.1)


def test_ended_executions_counts_what_moto_has_ended_per_machine(aws_env):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        watched, other = (sfn.create_state_machine(name=name, definition=json.dumps(WAIT_AS_TOLD),
                                                   roleArn=ROLE)["stateMachineArn"] for name in ("watched", "other"))
        # GIVEN one execution of the watched machine that keeps running, and one of another machine that ends
        running = sfn.start_execution(stateMachineArn=watched, name="long", input=NEVER)["executionArn"]
        elsewhere = sfn.start_execution(stateMachineArn=other, name="elsewhere", input=NOW)["executionArn"]
        _wait_ended(sfn, elsewhere)
        # WHEN it is counted while running THEN nothing has ended
        assert ended_executions("us-east-1", [watched]) == 0
        # WHEN one of the watched machine ends THEN it counts, once
        short = sfn.start_execution(stateMachineArn=watched, name="short", input=NOW)["executionArn"]
        _wait_ended(sfn, short)
        assert ended_executions("us-east-1", [watched]) == 1
        # AND an abort is an ending too
        sfn.stop_execution(executionArn=running)
        _wait_ended(sfn, running)
        assert ended_executions("us-east-1", [watched]) == 2


def test_ended_executions_of_a_region_with_no_machine_is_zero():
    # GIVEN no state machine at all in an unused region WHEN counted THEN zero, not an error
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        assert ended_executions("ap-south-2", ["arn:aws:states:ap-south-2:123456789012:stateMachine:none"]) == 0
