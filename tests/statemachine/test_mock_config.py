"""Every test case of ``statemachines/MockConfigFile.json``, run by moto's interpreter through the adapter.

The video state machine is created in moto as ``VideoAnalysis`` (the name the file's test cases are filed under)
from the ASL with fake Lambda ARNs; no function exists, so a task the case did not mock would fail. Each test
starts ``<arn>#<TestCase>`` as Step Functions Local would and checks the status, the output and the history.
Retry waits keep their computed length in :attr:`MockRun.waits` but sleep 1/100 of it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.eval.environment import Environment

from rekpipe.emulator.mock_config import (
    InvalidMockConfigError,
    MockConfig,
    MockConfigActiveError,
    MockConfigIncompatibleError,
    check_moto_compatibility,
    mock_config,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "video_analysis.asl.json"
MOCK_CONFIG_PATH = ROOT / "statemachines" / "MockConfigFile.json"
STATE_MACHINE_NAME = "VideoAnalysis"
ROLE_ARN = "arn:aws:iam::123456789012:role/VideoAnalysisRole"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"
SLOT_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/rekpipe-slots.fifo"
SUBSTITUTIONS: dict[str, int | str] = {
    "LambdaCollectResultsFunction": FUNCTION_ARN.format("collect-results"),
    "LambdaRecordOutcomeFunction": FUNCTION_ARN.format("record-outcome"),
    "SlotQueueUrl": SLOT_QUEUE_URL,
    "SlotMessageGroup": "video-slots",
    "SlotHeartbeatSeconds": 900,
    "RunJobTimeoutSeconds": 3600,
    "GetRetrySeconds": 1,
    # One iteration at a time, as AWS advises for mocks: invocation numbers then follow the item order.
    "MapMaxConcurrency": 1,
}
EXECUTION_TIMEOUT = 15.0
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
TASK = {"task_id": "t-0001", "run": 1, "bucket": "rekpipe-content", "key": "videos/clip.mp4", "version_id": None}
LABELS_SUMMARY = "s3://rekpipe-output/async/rekpipe-content/videos/clip.mp4/etag-none/run-001/LabelDetection/summary.json"
MANIFEST = "s3://rekpipe-output/async/rekpipe-content/videos/clip.mp4/etag-none/run-001/manifest.json"
MAP_ITERATION = ["RunJob", "RouteOnJobStatus", "CollectResults", "AllPagesCollected", "OperationSucceeded"]


def render_definition(substitutions: dict[str, int | str] = SUBSTITUTIONS) -> str:
    """The ASL with every ``${Name}`` filled, as CloudFormation's DefinitionSubstitutions would."""

    def fill(match: re.Match[str]) -> str:
        return str(substitutions[match[1]])

    return re.sub(r"\$\{(\w+)\}", fill, ASL_PATH.read_text())


@dataclass
class MockRun:
    """One finished execution of a test case."""

    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]
    waits: list[float] = field(default_factory=list)
    """Retry intervals moto computed during the run, in seconds."""

    @property
    def entered(self) -> list[str]:
        """Names of the states entered, in order (Map iterations inline)."""
        return [event["stateEnteredEventDetails"]["name"] for event in self.history if "stateEnteredEventDetails" in event]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.history if event["type"] == event_type]

    def payloads(self, state: str) -> list[dict[str, Any]]:
        """The Lambda payload (or SQS message body) of every scheduled attempt of ``state``, in order."""
        current: str | None = None
        payloads = []
        for event in self.history:
            if "stateEnteredEventDetails" in event:
                current = event["stateEnteredEventDetails"]["name"]
            elif event["type"] == "TaskScheduled" and current == state:
                parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
                payloads.append(parameters["Payload"] if "Payload" in parameters else parameters["MessageBody"])
        return payloads

    @property
    def results(self) -> list[dict[str, Any]]:
        assert self.output is not None, (self.status, self.error, self.cause)
        return self.output["results"]


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """moto's retrier sleeps 1/100 of each interval; the computed intervals are recorded in order.

    Executions left running by earlier tests (moto runs them on daemon threads) also retry; their
    threads existed before this test, so their waits are not this test's and are not recorded.
    """
    waits: list[float] = []
    earlier_threads = {thread.ident for thread in threading.enumerate()}

    def sleep(seconds: float) -> None:
        if threading.get_ident() not in earlier_threads:
            waits.append(seconds)
        time.sleep(seconds / 100)

    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=sleep))
    return waits


@pytest.fixture
def video_analysis(aws: Any, fast_retries: list[float]) -> Iterator[Callable[..., MockRun]]:
    """Factory: run one test case of the MockConfigFile on the ``VideoAnalysis`` machine, wait, return the run."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine_arn = sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=render_definition(),
                                           roleArn=ROLE_ARN)["stateMachineArn"]

    def run(test_case: str, *, operations: list[str] | None = None, execution_input: dict | None = None) -> MockRun:
        if execution_input is None:
            execution_input = {"task": TASK, "operations": operations or ["labels"]}
        execution_arn = sfn.start_execution(stateMachineArn=f"{machine_arn}#{test_case}", name=f"{test_case}-1",
                                            input=json.dumps(execution_input))["executionArn"]
        return wait_for(execution_arn, fast_retries)

    with mock_config(MOCK_CONFIG_PATH):
        yield run


def wait_for(execution_arn: str, waits: list[float] | None = None, timeout: float = EXECUTION_TIMEOUT) -> MockRun:
    """Poll until the execution ends; stop it and fail the test if it outlives ``timeout`` (threads are daemons)."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            history = sfn.get_execution_history(executionArn=execution_arn)["events"]
            sfn.stop_execution(executionArn=execution_arn, error="TestTimeout")
            entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
            pytest.fail(f"{execution_arn} still RUNNING after {timeout} s; entered {entered[-12:]}")
        time.sleep(0.02)
    history = sfn.get_execution_history(executionArn=execution_arn)["events"]
    output = json.loads(described["output"]) if "output" in described else None
    return MockRun(status=described["status"], output=output, error=described.get("error"),
                   cause=described.get("cause"), history=history, waits=list(waits or []))


def _iteration(*states: str) -> list[str]:
    return ["ValidateInput", "AnalyzeOperations", *states, "RecordOutcome", "VideoAnalysed"]


# --- the test cases of the file ---------------------------------------------------------------
# No case mocks a ``States.*`` error: the lost notice and the silent dispatcher are handled outside the
# machine (the dispatcher's tick, RunJob's heartbeat), so every case runs unchanged on moto, LocalStack
# and Step Functions Local. A cancel is not a path of the machine: the execution is stopped from outside
# (tests/statemachine/test_video_workflow.py covers what the dispatcher then does with its slot).
def test_video_analysis_happy_path(video_analysis):
    # GIVEN a video with two operations and every task answering success

    # WHEN the HappyPath test case runs
    run = video_analysis("HappyPath", operations=["labels", "moderation"])

    # THEN both operations succeed in order, each through one want (one wait) and one collection
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration(*MAP_ITERATION, *MAP_ITERATION)
    assert [(r["operation"], r["status"], r["jobId"]) for r in run.results] == [
        ("labels", "SUCCEEDED", "job-labels-0001"), ("moderation", "SUCCEEDED", "job-moderation-0002")]
    assert run.results[0]["summaryUri"] == LABELS_SUMMARY
    assert run.results[0]["pages"] == 2
    assert run.output["outcome"] == {"status": "SUCCEEDED", "manifestUri": MANIFEST}
    # AND each want names its holder, its execution and the Start* request, in the slot group
    wants = run.payloads("RunJob")
    assert [w["holder"] for w in wants] == ["HappyPath-1-labels", "HappyPath-1-moderation"]
    assert {w["kind"] for w in wants} == {"want"}
    assert wants[0]["request"] == {"task": TASK, "operation": "labels"}
    assert wants[0]["execution"].endswith(":execution:VideoAnalysis:HappyPath-1")
    assert run.payloads("RecordOutcome")[0]["results"] == run.results
    # and no Lambda function exists: every task was answered by the mock configuration
    assert boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"] == []


def test_video_analysis_job_failed(video_analysis):
    # GIVEN a job that ended FAILED (the dispatcher resumes RunJob with the job's status, the slot already free)

    # WHEN the JobFailed test case runs
    run = video_analysis("JobFailed")

    # THEN the Map yields a FAILED result with Rekognition's reason, and the outcome is still recorded
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration("RunJob", "RouteOnJobStatus", "JobFailed", "OperationFailed")
    assert run.results == [{"operation": "labels", "status": "FAILED", "error": "JobFailedError",
                            "cause": "Rekognition reports job job-labels-0001 FAILED: Unsupported codec in "
                                     "videos/clip.mp4."}]
    assert run.output["outcome"]["status"] == "FAILED"


def test_video_analysis_job_rejected(video_analysis):
    # GIVEN a Start* Rekognition refused for good (the dispatcher fails RunJob's token with JobRejectedError)

    # WHEN the JobRejected test case runs
    run = video_analysis("JobRejected")

    # THEN it is not retried: the operation fails with that reason and nothing is collected
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration("RunJob", "OperationFailed")
    assert len(run.payloads("RunJob")) == 1
    assert run.results[0]["error"] == "JobRejectedError"
    assert "InvalidS3ObjectException" in run.results[0]["cause"]


def test_video_analysis_lost_notice(video_analysis):
    # GIVEN a job whose SNS notice never arrives, although the job succeeded: the dispatcher's tick finds its
    # end with Get* and resumes RunJob exactly as the notice would have

    # WHEN the LostNotice test case runs
    run = video_analysis("LostNotice")

    # THEN the machine takes the happy path: no timeout, no re-check, no extra state
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration(*MAP_ITERATION)
    assert run.events("TaskTimedOut") == []
    assert run.payloads("CollectResults")[0]["job"] == {"jobId": "job-labels-0001", "status": "SUCCEEDED",
                                                        "statusMessage": ""}


def test_video_analysis_want_send_retried(video_analysis):
    # GIVEN a want whose SendMessage fails once (SQS unavailable)

    # WHEN the WantSendRetried test case runs
    run = video_analysis("WantSendRetried")

    # THEN RunJob is retried (a new token, so a new deduplication ID) and the operation succeeds
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration(*MAP_ITERATION)
    assert [e["taskFailedEventDetails"]["error"] for e in run.events("TaskFailed")] == ["SQS.AmazonSQSException"]
    assert len(run.payloads("RunJob")) == 2
    assert run.waits == [2]
    assert run.results[0]["status"] == "SUCCEEDED"


def test_video_analysis_collection_resumes(video_analysis):
    # GIVEN a collection that runs short of Lambda time after three pages

    # WHEN the CollectionResumes test case runs
    run = video_analysis("CollectionResumes")

    # THEN CollectResults runs again with its own progress and the result counts every page
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration("RunJob", "RouteOnJobStatus", "CollectResults", "AllPagesCollected",
                                     "CollectResults", "AllPagesCollected", "OperationSucceeded")
    first, second = run.payloads("CollectResults")
    assert first["collect"] is None
    assert second["collect"]["result"]["done"] is False
    assert second["collect"]["result"]["page"] == 3
    assert run.results[0]["pages"] == 5


def test_video_analysis_collection_failed(video_analysis):
    # GIVEN a collection that fails after the job succeeded

    # WHEN the CollectionFailed test case runs
    run = video_analysis("CollectionFailed")

    # THEN the operation fails with the collection's reason (the slot was freed when the job ended)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.entered == _iteration("RunJob", "RouteOnJobStatus", "CollectResults", "OperationFailed")
    assert run.results[0]["status"] == "FAILED"
    assert run.results[0]["error"] == "ClientError"
    assert "AccessDenied" in run.results[0]["cause"]


def test_video_analysis_get_throttling_is_retried_by_name(video_analysis):
    # GIVEN a collection whose Get* stays throttled, then unavailable, through the function's own retries

    # WHEN the CollectionThrottledRetried test case runs
    run = video_analysis("CollectionThrottledRetried")

    # THEN the state machine retries CollectResults by those error names, with growing jittered waits,
    # and the paid-for job's operation SUCCEEDED
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert [e["taskFailedEventDetails"]["error"] for e in run.events("TaskFailed")] == [
        "RekognitionThrottledError", "RekognitionUnavailableError"]
    assert len(run.payloads("CollectResults")) == 3
    assert len(run.waits) == 2
    assert 0 <= run.waits[0] <= SUBSTITUTIONS["GetRetrySeconds"]
    assert 0 <= run.waits[1] <= 2 * SUBSTITUTIONS["GetRetrySeconds"]
    assert run.results[0]["status"] == "SUCCEEDED"


def test_video_analysis_get_throttling_exhausted_fails_with_the_reason(video_analysis):
    # GIVEN a collection whose Get* stays throttled through every retry (8 by the state machine)

    # WHEN the CollectionThrottledExhausted test case runs
    run = video_analysis("CollectionThrottledExhausted")

    # THEN after 9 attempts the operation ends FAILED saying the results could not be read, not that the job failed
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert len(run.payloads("CollectResults")) == 9
    assert max(run.waits) <= 120  # MaxDelaySeconds caps the backoff
    assert run.results[0]["status"] == "FAILED"
    assert run.results[0]["error"] == "RekognitionThrottledError"
    assert "still throttled" in run.results[0]["cause"] and "the job succeeded" in run.results[0]["cause"]


def test_video_analysis_outcome_not_recorded(video_analysis):
    # GIVEN a task table that keeps rejecting RecordOutcome

    # WHEN the OutcomeNotRecorded test case runs
    run = video_analysis("OutcomeNotRecorded")

    # THEN RecordOutcome is tried four times (5, 10, 20 s apart) and the execution fails with OutcomeNotRecorded
    assert run.status == "FAILED"
    assert run.error == "OutcomeNotRecorded"
    assert run.entered == ["ValidateInput", "AnalyzeOperations", *MAP_ITERATION, "RecordOutcome", "OutcomeNotRecorded"]
    assert len(run.payloads("RecordOutcome")) == 4
    assert run.waits == [5, 10, 20]


def test_video_analysis_invalid_input(video_analysis):
    # GIVEN an input without task.key and with no operation

    # WHEN the InvalidInput test case runs
    run = video_analysis("InvalidInput", execution_input={"task": {"task_id": "t-0001", "run": 1}, "operations": []})

    # THEN the machine rejects it before any task runs
    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert run.entered == ["ValidateInput", "RejectInput"]
    assert run.events("TaskScheduled") == []


def test_mock_config_cases_mock_no_states_error():
    # GIVEN every mocked response of the file
    raw = json.loads(MOCK_CONFIG_PATH.read_text())
    thrown = {attempt["Throw"]["Error"] for response in raw["MockedResponses"].values()
              for attempt in response.values() if "Throw" in attempt}
    # WHEN / THEN none throws a reserved States.* name (LocalStack 2026.3 turns those into States.Runtime),
    # so the same cases run unchanged on moto, LocalStack and Step Functions Local
    assert thrown and not any(name.startswith("States.") for name in thrown)
    # AND every case names exactly the machine's three task states
    for name, case in raw["StateMachines"][STATE_MACHINE_NAME]["TestCases"].items():
        assert set(case) == {"RunJob", "CollectResults", "RecordOutcome"}, name


# --- the adapter ------------------------------------------------------------------------------
def test_mock_config_nested_activation_rejected(video_analysis):
    # GIVEN the fixture's adapter active

    # WHEN a second one is entered
    # THEN it is refused instead of stacking patches
    with pytest.raises(MockConfigActiveError), mock_config(MOCK_CONFIG_PATH):
        pass


def test_mock_config_retry_counting_repeats_first_response(aws, fast_retries):
    # GIVEN the machine and the file read with RetryCount numbering (moto's and LocalStack's own)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine_arn = sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=render_definition(),
                                           roleArn=ROLE_ARN)["stateMachineArn"]

    # WHEN HappyPath runs for two operations
    with mock_config(MOCK_CONFIG_PATH, counting="retry"):
        execution_arn = sfn.start_execution(stateMachineArn=f"{machine_arn}#HappyPath", name="retry-counting",
                                            input=json.dumps({"task": TASK, "operations": ["labels", "moderation"]})
                                            )["executionArn"]
        run = wait_for(execution_arn)

    # THEN both iterations got RunJob's response "0" (Step Functions Local would give the second one "1")
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert [r["jobId"] for r in run.results] == ["job-labels-0001", "job-labels-0001"]


def test_mock_config_unmocked_task_calls_the_service(aws, fast_retries):
    # GIVEN a copy of HappyPath that leaves RecordOutcome unmocked, and no Lambda function
    raw = json.loads(MOCK_CONFIG_PATH.read_text())
    del raw["StateMachines"][STATE_MACHINE_NAME]["TestCases"]["HappyPath"]["RecordOutcome"]
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine_arn = sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=render_definition(),
                                           roleArn=ROLE_ARN)["stateMachineArn"]

    # WHEN it runs
    with mock_config(raw):
        execution_arn = sfn.start_execution(stateMachineArn=f"{machine_arn}#HappyPath", name="unmocked",
                                            input=json.dumps({"task": TASK, "operations": ["labels"]}))["executionArn"]
        run = wait_for(execution_arn, fast_retries)

    # THEN the mocked tasks succeed but RecordOutcome really invokes Lambda, is retried and fails
    assert run.entered == ["ValidateInput", "AnalyzeOperations", *MAP_ITERATION, "RecordOutcome", "OutcomeNotRecorded"]
    assert {e["taskFailedEventDetails"]["error"] for e in run.events("TaskFailed")} == {
        "Lambda.ResourceNotFoundException"}
    assert run.waits == [5, 10, 20]


def test_mock_config_unknown_test_case_rejected(video_analysis):
    # GIVEN the adapter serving the file
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine_arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]

    # WHEN a test case the file does not define is started
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=f"{machine_arn}#NoSuchCase", input="{}")

    # THEN StartExecution fails with InvalidName, naming the defined cases
    assert raised.value.response["Error"]["Code"] == "InvalidName"
    assert "HappyPath" in raised.value.response["Error"]["Message"]


def test_mock_config_restores_moto_on_exit(aws):
    # GIVEN moto's own method
    original = Environment.__dict__["get_current_mocked_response"]

    # WHEN the adapter is entered and left
    with mock_config(MOCK_CONFIG_PATH):
        patched = Environment.__dict__["get_current_mocked_response"]

    # THEN it was replaced only while active
    assert patched is not original
    assert Environment.__dict__["get_current_mocked_response"] is original


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw["MockedResponses"]["RunJobSucceeded"].pop("0"), "consecutive"),
        (lambda raw: raw["MockedResponses"]["RunJobRejected"]["0"]["Throw"].update(Error="States.Timout"), "States"),
        (lambda raw: raw["MockedResponses"].pop("RunJobFoundByTick"), "RunJobFoundByTick"),
        (lambda raw: raw["MockedResponses"]["RunJobFailed"]["0"].update(Throw={"Error": "X", "Cause": "y"}),
         "exactly one"),
    ],
    ids=["gap", "unknown-states-error", "missing-response", "return-and-throw"],
)
def test_mock_config_invalid_file_rejected(mutate, message):
    # GIVEN the file with one mistake
    raw = json.loads(MOCK_CONFIG_PATH.read_text())
    mutate(raw)

    # WHEN it is parsed / THEN the error names the mistake
    with pytest.raises(InvalidMockConfigError, match=message):
        MockConfig(raw)


def test_mock_config_fails_loudly_when_moto_changes(monkeypatch):
    # GIVEN a moto whose Environment lost the method the adapter replaces
    monkeypatch.delattr(Environment, "get_current_mocked_response")

    # WHEN the compatibility check runs / THEN it names what changed
    with pytest.raises(MockConfigIncompatibleError, match="Environment.get_current_mocked_response"):
        check_moto_compatibility()


def test_moto_interpreter_catch_to_own_state_takes_next(aws):
    # GIVEN a task whose timeout is caught back into the task itself, mocked to time out once then succeed
    definition = {
        "StartAt": "Acquire",
        "States": {
            "Acquire": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": FUNCTION_ARN.format("acquire")}, "ResultPath": None,
                        "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "Acquire"}],
                        "Next": "Work"},
            "Work": {"Type": "Succeed"},
        },
    }
    config = {
        "StateMachines": {"SelfLoop": {"TestCases": {"TimeoutOnce": {"Acquire": "TimeoutThenOk"}}}},
        "MockedResponses": {"TimeoutThenOk": {"0": {"Throw": {"Error": "States.Timeout", "Cause": "lost"}},
                                              "1": {"Return": {"StatusCode": 200, "Payload": {}}}}},
    }
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine_arn = sfn.create_state_machine(name="SelfLoop", definition=json.dumps(definition),
                                           roleArn=ROLE_ARN)["stateMachineArn"]

    # WHEN it runs on moto
    with mock_config(config):
        run = wait_for(sfn.start_execution(stateMachineArn=f"{machine_arn}#TimeoutOnce", name="self-loop")["executionArn"])

    # THEN moto follows "Next" instead of the Catch (AWS would enter Acquire again), which is why no Catch of the
    # video machine targets its own state (see test_asl_no_catch_targets_its_own_state)
    assert run.status == "SUCCEEDED"
    assert run.entered == ["Acquire", "Work"]
