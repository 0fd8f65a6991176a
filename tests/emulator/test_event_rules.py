"""The execution status rule lists executions only when one has ended since its last listing."""

from __future__ import annotations

import json
import time

import boto3
from moto import mock_aws

from rekpipe.emulator.event_rules import ended_executions

ROLE = "arn:aws:iam::123456789012:role/states"
WAIT_ONE_SECOND = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}}


def _wait_ended(sfn, execution_arn: str) -> None:
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.1)


def test_ended_executions_counts_what_moto_has_ended_per_machine(aws_env):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        watched, other = (sfn.create_state_machine(name=name, definition=json.dumps(WAIT_ONE_SECOND),
                                                   roleArn=ROLE)["stateMachineArn"] for name in ("watched", "other"))
        # GIVEN one running execution of the watched machine and one of another machine
        running = sfn.start_execution(stateMachineArn=watched, name="first")["executionArn"]
        sfn.start_execution(stateMachineArn=other, name="elsewhere")
        # WHEN it is counted while running THEN nothing has ended
        assert ended_executions("us-east-1", [watched]) == 0
        # WHEN both end THEN only the watched machine's execution counts, once
        _wait_ended(sfn, running)
        assert ended_executions("us-east-1", [watched]) == 1
        # AND an abort is an ending too
        aborted = sfn.start_execution(stateMachineArn=watched, name="second")["executionArn"]
        sfn.stop_execution(executionArn=aborted)
        _wait_ended(sfn, aborted)
        assert ended_executions("us-east-1", [watched]) == 2


def test_ended_executions_of_a_region_with_no_machine_is_zero():
    # GIVEN no state machine at all in an unused region WHEN counted THEN zero, not an error
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        assert ended_executions("ap-south-2", ["arn:aws:states:ap-south-2:123456789012:stateMachine:none"]) == 0
