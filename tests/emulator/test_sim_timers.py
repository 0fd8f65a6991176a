"""Step Functions timers on the simulated clock: the scaling, its limits, and moto's internals it needs."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from rekpipe.emulator import sim_timers


def test_sim_timers_moto_internals_are_where_expected():
    # GIVEN / WHEN / THEN the moto 5.2.5 internals the scaling patches exist (an upgrade fails here first)
    sim_timers.check_compatibility()


@pytest.mark.parametrize("scale", [0, -1, sim_timers.MAX_SCALE * 2])
def test_sim_timers_refuse_a_clock_the_emulator_cannot_follow(scale):
    # GIVEN / WHEN / THEN a frozen, backwards or too fast clock is refused with the reason
    with pytest.raises(ValueError, match="clock_scale"):
        sim_timers.install(scale)


def test_sim_timers_scaled_period_has_a_floor():
    # GIVEN / WHEN / THEN a minute at x100 fires every 0.6 s; at x1000 (were it allowed), every 0.25 s (the floor)
    assert sim_timers.scaled_period(60, 100) == pytest.approx(0.6)
    assert sim_timers.scaled_period(60, 1000) == sim_timers.MIN_PERIOD_SECONDS


def test_sim_timers_a_task_timeout_and_retry_run_on_the_scaled_clock(aws):
    # GIVEN a token wait of TimeoutSeconds 100 retried once after 100 s, nobody answering, at x100
    sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    definition = {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "TimeoutSeconds": 100,
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 100, "MaxAttempts": 1}], "End": True}}}
    machine = sfn.create_state_machine(name="slow", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    undo = sim_timers.install(100)
    try:
        # WHEN it runs
        started = time.monotonic()
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            assert time.monotonic() - started < 30, "the timers did not run on the scaled clock"
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        undo()
    # THEN 300 simulated seconds (two timeouts and the retry wait) took seconds, not the 300 an unscaled run takes
    events = sfn.get_execution_history(executionArn=execution)["events"]
    assert [e["type"] for e in events].count("TaskTimedOut") == 2
    assert 1.5 <= elapsed < 15


def test_sim_timers_a_longer_heartbeat_allows_a_faster_clock():
    # GIVEN the default heartbeat (900 s) and one ten times longer
    # WHEN / THEN x100 is the default's limit and x1000 the longer one's: RunJob's HeartbeatSeconds stays 9 real s
    assert sim_timers.max_scale() == sim_timers.MAX_SCALE == 100
    assert sim_timers.max_scale(9000) == 1000
    with pytest.raises(ValueError, match="video_slot_heartbeat_seconds 900"):
        sim_timers.install(1000)
    sim_timers.install(1000, heartbeat_seconds=9000)()
