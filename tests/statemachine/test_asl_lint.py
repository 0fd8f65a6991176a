"""Static checks of ``statemachines/video_analysis.asl.json`` and of its ``MockConfigFile.json``.

statelint validates the definition after the DefinitionSubstitutions are filled (numbers unquoted, as
CloudFormation leaves them); the project's own rules (reachability, timeouts, Lambda retries, failures that must
not escape a Map iteration) are checked on the parsed JSON, scope by scope (top level, then each Map's states).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "video_analysis.asl.json"
MOCK_CONFIG_PATH = ROOT / "statemachines" / "MockConfigFile.json"
STATE_MACHINE_NAME = "VideoAnalysis"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
WAIT_FOR_TASK_TOKEN = ".waitForTaskToken"
LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"}
NUMBER_SUBSTITUTIONS = {"SlotHeartbeatSeconds": 900, "RunJobTimeoutSeconds": 5400, "GetRetrySeconds": 5,
                        "MapMaxConcurrency": 8}
ARN_SUBSTITUTIONS = {
    name: f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    for name in ("LambdaCollectResultsFunction", "LambdaRecordOutcomeFunction")
}
QUEUE_SUBSTITUTIONS = {"SlotQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/Slots.fifo",
                       "SlotMessageGroup": "video-slots"}
SUBSTITUTIONS: dict[str, int | str] = {**ARN_SUBSTITUTIONS, **NUMBER_SUBSTITUTIONS, **QUEUE_SUBSTITUTIONS}


def render(text: str, substitutions: dict[str, int | str] = SUBSTITUTIONS) -> str:
    """Fill ``${Name}`` as CloudFormation does: plain text replacement, so numbers stay unquoted."""
    return re.sub(r"\$\{(\w+)\}", lambda match: str(substitutions[match[1]]), text)


def scopes(definition: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state list with its own ``StartAt``: the machine, then each Map processor and Parallel branch."""
    yield path or "<top>", definition
    for name, state in definition["States"].items():
        for inner in (state.get("ItemProcessor"), state.get("Iterator")):
            if inner:
                yield from scopes(inner, f"{path}{name}/")
        for number, branch in enumerate(state.get("Branches", [])):
            yield from scopes(branch, f"{path}{name}[{number}]/")


def targets(state: dict[str, Any]) -> list[str]:
    """Every state name a state can transition to."""
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for _, scope in scopes(definition) for name, state in scope["States"].items()}


def statelint(definition_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``statelint`` console script of this interpreter's environment on a definition."""
    command = shutil.which("statelint", path=str(Path(sys.executable).parent)) or shutil.which("statelint")
    assert command, "statelint is not installed (pip install statelint)"
    path = tmp_path / "definition.asl.json"
    path.write_text(definition_text)
    return subprocess.run([command, str(path)], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(render(ASL_PATH.read_text()))


@pytest.fixture(scope="module")
def mock_file() -> dict[str, Any]:
    return json.loads(MOCK_CONFIG_PATH.read_text())


# --- the ASL ------------------------------------------------------------------------------------
def test_asl_substitutions_are_the_documented_ones():
    # GIVEN the raw definition
    text = ASL_PATH.read_text()

    # WHEN its placeholders are collected
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))

    # THEN they are exactly the DefinitionSubstitutions the stack provides, and numbers are not quoted
    assert placeholders == set(SUBSTITUTIONS)
    for name in NUMBER_SUBSTITUTIONS:
        assert f'"${{{name}}}"' not in text, f"{name} is quoted, so it would substitute as a string"


def test_asl_statelint_passes(tmp_path):
    # GIVEN the definition with every substitution filled
    rendered = render(ASL_PATH.read_text())

    # WHEN statelint validates it
    result = statelint(rendered, tmp_path)

    # THEN it reports no problem
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_statelint_catches_a_broken_definition(tmp_path, definition):
    # GIVEN the definition with a dangling Next (so a silent linter would be noticed)
    broken = json.loads(json.dumps(definition))
    broken["States"]["RecordOutcome"]["Next"] = "NoSuchState"

    # WHEN statelint validates it
    result = statelint(json.dumps(broken), tmp_path)

    # THEN it fails and names the missing state
    assert result.returncode == 1
    assert "NoSuchState" in result.stdout


def test_asl_every_target_exists(definition):
    # GIVEN every scope of the machine
    for path, scope in scopes(definition):
        # WHEN its transitions are collected
        missing = {(name, target) for name, state in scope["States"].items() for target in targets(state)
                   if target not in scope["States"]}

        # THEN each names a state of the same scope
        assert scope["StartAt"] in scope["States"], path
        assert not missing, f"{path}: {missing}"


def test_asl_every_state_reachable(definition):
    # GIVEN every scope of the machine
    for path, scope in scopes(definition):
        # WHEN the states reachable from StartAt are walked
        reached, pending = set(), [scope["StartAt"]]
        while pending:
            name = pending.pop()
            if name not in reached:
                reached.add(name)
                pending.extend(targets(scope["States"][name]))

        # THEN none is left over
        assert set(scope["States"]) - reached == set(), path


def test_asl_no_catch_targets_its_own_state(definition):
    # GIVEN every state with a Catch
    for name, state in all_states(definition).items():
        # WHEN its catchers' targets are read
        # THEN none is the state itself: moto and LocalStack would follow the state's Next instead
        assert name not in [catcher["Next"] for catcher in state.get("Catch", [])], name


def test_asl_tasks_have_timeouts(definition):
    # GIVEN every Task state
    tasks = {name: state for name, state in all_states(definition).items() if state["Type"] == "Task"}

    # WHEN their resources and timeouts are read
    # THEN a token wait always has TimeoutSeconds, and any other task has one unless it is a plain Lambda invoke
    assert tasks
    for name, state in tasks.items():
        resource = state["Resource"]
        if resource.endswith(WAIT_FOR_TASK_TOKEN):
            assert isinstance(state.get("TimeoutSeconds"), int), f"{name} waits on a token without TimeoutSeconds"
        elif resource != LAMBDA_INVOKE:
            assert "TimeoutSeconds" in state, f"{name} ({resource}) has no TimeoutSeconds"


def test_asl_lambda_tasks_retry_service_exceptions(definition):
    # GIVEN every Task that invokes Lambda
    lambda_tasks = {name: state for name, state in all_states(definition).items()
                    if state["Type"] == "Task" and state["Resource"].startswith(LAMBDA_INVOKE)}

    # WHEN their retriers are read
    # THEN one retries Lambda's transient service errors (2 s, x2, 6 attempts)
    assert set(lambda_tasks) == {"CollectResults", "RecordOutcome"}  # RunJob sends to SQS
    for name, state in lambda_tasks.items():
        retriers = [r for r in state.get("Retry", []) if set(r["ErrorEquals"]) >= LAMBDA_SERVICE_ERRORS]
        assert retriers, f"{name} does not retry {sorted(LAMBDA_SERVICE_ERRORS)}"
        assert (retriers[0]["IntervalSeconds"], retriers[0]["BackoffRate"], retriers[0]["MaxAttempts"]) == (2, 2.0, 6)


def test_asl_retriers_put_states_all_last(definition):
    # GIVEN every retrier list
    for name, state in all_states(definition).items():
        retriers = state.get("Retry", [])

        # WHEN a retrier matches States.ALL
        # THEN it matches nothing else and comes last (the ASL specification's rule)
        for number, retrier in enumerate(retriers):
            if "States.ALL" in retrier["ErrorEquals"]:
                assert retrier["ErrorEquals"] == ["States.ALL"] and number == len(retriers) - 1, name


def test_asl_retry_waits_are_bounded(definition):
    # GIVEN every retrier, with the stack's default substitutions
    for name, state in all_states(definition).items():
        for retrier in state.get("Retry", []):
            # WHEN its longest single wait is computed
            attempts, rate = retrier.get("MaxAttempts", 3), retrier.get("BackoffRate", 2.0)
            longest = retrier.get("IntervalSeconds", 1) * rate ** max(attempts - 1, 0)
            longest = min(longest, retrier.get("MaxDelaySeconds", longest))

            # THEN no wait exceeds an hour
            assert attempts == 0 or longest <= 3600, (
                f"{name} retries {retrier['ErrorEquals']} {attempts} times at x{rate}: the last wait is "
                f"{longest:,.0f} s; add MaxDelaySeconds"
            )


def test_asl_map_iteration_failures_are_caught(definition):
    # GIVEN the states of the Map iteration, which must end in a result, never an error
    processor = definition["States"]["AnalyzeOperations"]["ItemProcessor"]["States"]

    # WHEN their error handling is read
    # THEN every Task ends its Catch list with States.ALL and every Choice has a Default
    for name, state in processor.items():
        if state["Type"] == "Task":
            catchers = state.get("Catch", [])
            assert catchers and catchers[-1]["ErrorEquals"] == ["States.ALL"], f"{name} can fail the Map"
            assert all("ResultPath" in catcher for catcher in catchers), f"{name} has a Catch without ResultPath"
        if state["Type"] == "Choice":
            assert "Default" in state, f"{name} fails the Map with States.NoChoiceMatched"
    assert not [name for name, state in processor.items() if state["Type"] == "Fail"]


def test_asl_failure_results_read_what_the_catchers_write(definition):
    # GIVEN the iteration's two terminal Pass states and the catchers that lead to them
    processor = definition["States"]["AnalyzeOperations"]["ItemProcessor"]["States"]

    # WHEN the ResultPath of every Catch that reaches a failure path is read
    into_failure = {(name, catcher["ResultPath"]) for name, state in processor.items()
                    for catcher in state.get("Catch", [])
                    if catcher["Next"] == "OperationFailed"}

    # THEN each writes $.failure (read by OperationFailed)
    assert {path for _, path in into_failure} == {"$.failure"}
    assert processor["OperationFailed"]["Parameters"]["error.$"] == "$.failure.Error"


# --- the MockConfigFile -------------------------------------------------------------------------
def test_mock_config_file_structure(mock_file, definition):
    # GIVEN the file and the machine's Task states
    tasks = {name: state for name, state in all_states(definition).items() if state["Type"] == "Task"}
    cases = mock_file["StateMachines"][STATE_MACHINE_NAME]["TestCases"]
    responses = mock_file["MockedResponses"]

    # WHEN every test case is read
    used = set()
    for case, mapped in cases.items():
        # THEN it names only Task states of the machine, mocks all of them (no case reaches a real function)
        # and uses only defined responses
        assert set(mapped) == set(tasks), f"{case}: {set(mapped) ^ set(tasks)}"
        assert set(mapped.values()) <= set(responses), case
        used |= set(mapped.values())

    # THEN every response is used by some case
    assert set(responses) == used


def test_mock_config_file_responses_fit_each_integration(mock_file, definition):
    # GIVEN the file and the machine's Task states
    tasks = {name: state for name, state in all_states(definition).items() if state["Type"] == "Task"}
    cases = mock_file["StateMachines"][STATE_MACHINE_NAME]["TestCases"]

    # WHEN every response is read for the task it mocks
    for case, mapped in cases.items():
        for state_name, response_name in mapped.items():
            token_wait = tasks[state_name]["Resource"].endswith(WAIT_FOR_TASK_TOKEN)
            for key, response in mock_file["MockedResponses"][response_name].items():
                # THEN each is one Return or one Throw with string Error and Cause; a plain invoke returns the
                # Invoke result (StatusCode and Payload) while a token wait returns what SendTaskSuccess sends
                assert re.fullmatch(r"\d+(-\d+)?", key), (response_name, key)
                assert len(response) == 1 and set(response) <= {"Return", "Throw"}, (response_name, key)
                if "Throw" in response:
                    assert set(response["Throw"]) == {"Error", "Cause"}, (response_name, key)
                elif token_wait:
                    assert "StatusCode" not in response["Return"], (case, state_name, response_name)
                else:
                    assert set(response["Return"]) >= {"StatusCode", "Payload"}, (case, state_name, response_name)
