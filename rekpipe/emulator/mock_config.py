"""Run the test cases of a Step Functions Local ``MockConfigFile.json`` on moto's interpreter.

Step Functions Local (and LocalStack) read a mock configuration named by ``SFN_MOCK_CONFIG`` and run a test case
when ``StartExecution`` gets the state machine ARN with a ``#<TestCase>`` suffix: every Task state the case names
returns or throws its mocked response instead of calling the service. moto 5.2.5 carries LocalStack's port of that
machinery (``moto.stepfunctions.parser.mocking``) but never switches it on: ``load_mock_test_case_for()`` always
returns None, and the backend moto actually serves (``StepFunctionsParserBackend``, not the unused LocalStack
``provider.py``) neither strips the suffix nor hands a test case to the execution worker. :func:`mock_config`
patches four places, and only while it is active:

* ``StepFunctionsParserBackend.start_execution``: an ARN ending in ``#<TestCase>`` runs the base state machine with
  that case of the file, looked up by the state machine's name as Step Functions Local does. An unknown case is
  rejected with ``InvalidName``.
* ``Execution._get_start_execution_worker``: gives the new ``ExecutionWorker`` the case (its ``mock_test_case``,
  which moto's ``Environment`` and every Map/Parallel frame already honour).
* ``Environment.get_current_mocked_response``: moto picks the response by the state's ``RetryCount``, which
  restarts at 0 whenever a Catch or a Choice loops back to the state, so a re-entered state would get its first
  response for ever. AWS documents the keys as the *invocation* number of the state in the execution; Step
  Functions Local, and LocalStack 2026.3, count every invocation (retries, loops and Map iterations alike), and
  this adapter counts the same way. Pass ``counting="retry"`` to keep moto's own behaviour instead.
* ``mock_eval_utils._eval_mocked_response_throw``: moto wraps every thrown name in ``CustomErrorName``, which raises
  ``ValueError`` for ``States.*`` names, so a mocked ``States.Timeout`` (a usual way to simulate a lost task
  token; ``statemachines/MockConfigFile.json`` no longer uses one) became a ``States.Runtime`` failure that no ``States.Timeout`` Retry or Catch matched. Reserved names
  become moto's ``StatesErrorName``; ``States.Timeout`` is recorded as ``TaskTimedOut``, as AWS does.

Mocked ``.waitForTaskToken`` tasks do not wait: as in Step Functions Local, the ``Return`` is the task's result,
i.e. what ``SendTaskSuccess`` would have sent. A task the case does not name still calls the service. With a Map
whose MaxConcurrency is above 1, iterations draw invocation numbers in whatever order they run (AWS gives the same
warning for Step Functions Local).

Not fixed here, because they are interpreter faults rather than mock-config ones (moto 5.2.5 and LocalStack alike):

* a Catch whose ``Next`` is the failing state itself is ignored and the state's own ``Next`` is followed
  (``State._set_next`` reads "next == own name" as "not overridden");
  upstream: docs/upstream/sfn-catch-next-self.md (still in moto at 0af643a, 2026-08-22);
* ``States.ALL`` catches ``States.Runtime``, which AWS never does, so a missing mocked response shows up as a
  caught ``States.Runtime`` task failure instead of failing the execution;
  upstream: docs/upstream/sfn-states-all-catches-runtime.md (still in moto at 0af643a, 2026-08-22).

These are private moto internals. moto is pinned; :func:`check_moto_compatibility` runs on every entry and raises
:class:`MockConfigIncompatibleError` naming what changed, so an upgrade fails loudly instead of silently running
unmocked tasks.

Example
-------
>>> with mock_config("statemachines/MockConfigFile.json"):  # doctest: +SKIP
...     sfn.start_execution(stateMachineArn=f"{state_machine_arn}#HappyPath", input=json.dumps(event))
"""

from __future__ import annotations

import inspect
import json
import threading
from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from moto.stepfunctions.exceptions import InvalidName
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails, TaskTimedOutEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

Counting = Literal["invocation", "retry"]

TEST_CASE_SEPARATOR = "#"
"""Separates the state machine ARN from the test case name, as in Step Functions Local."""
TIMEOUT_ERROR = "States.Timeout"
_PATCHES: tuple[tuple[Any, str, tuple[str, ...] | None], ...] = (
    (StepFunctionsParserBackend, "start_execution", ("self", "state_machine_arn", "name", "execution_input",
                                                      "trace_header")),
    (Execution, "_get_start_execution_worker", ("self",)),
    (Environment, "get_current_mocked_response", ("self",)),
    (mock_eval_utils, "_eval_mocked_response_throw", ("env", "mocked_response")),
)
_pending_test_case: ContextVar[MockTestCase | None] = ContextVar("pending_mock_test_case", default=None)
_install_lock = threading.Lock()


# --- errors -----------------------------------------------------------------------------------
class MockConfigError(Exception):
    """Base class of the mock-config adapter's errors."""


class InvalidMockConfigError(MockConfigError):
    """The mock configuration file does not follow the documented MockConfigFile structure."""


class MockConfigIncompatibleError(MockConfigError):
    """moto's internals no longer look like the moto 5.2.5 code this adapter patches."""


class MockConfigActiveError(MockConfigError):
    """Another ``mock_config`` is already active in this process."""


# --- the configuration ------------------------------------------------------------------------
class CountedTestCase(MockTestCase):
    """moto's ``MockTestCase`` that numbers responses by invocation, as Step Functions Local does.

    One instance serves one execution: it counts how often each state asked for a response.
    """

    def __init__(self, state_machine_name: str, test_case_name: str, mocked: list[StateMockedResponses]):
        super().__init__(state_machine_name, test_case_name, mocked)
        self.invocations: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next_response(self, state_name: str) -> MockedResponse:
        """The response for this invocation of ``state_name`` (retries, loops and Map iterations all count)."""
        responses = self.state_mocked_responses[state_name].mocked_responses
        with self._lock:
            number = self.invocations[state_name]
            self.invocations[state_name] += 1
        if number >= len(responses):
            # moto reports this as a States.Runtime task failure; Step Functions Local fails the execution.
            raise RuntimeError(
                f"No mocked response for invocation {number} of state '{state_name}' in test case "
                f"'{self.test_case_name}' (the file defines {len(responses)})"
            )
        return responses[number]


class MockConfig:
    """A parsed MockConfigFile: test cases by state machine name, each turned into moto's ``MockTestCase``.

    Parameters
    ----------
    raw: dict
        The file's JSON: ``{"StateMachines": {name: {"TestCases": {case: {state: response}}}},
        "MockedResponses": {response: {"0": {"Return": ...}, "1-2": {"Throw": {"Error", "Cause"}}}}}``.
    counting: str
        ``"invocation"`` (Step Functions Local: the n-th call of a state in the execution gets response n) or
        ``"retry"`` (moto and LocalStack: the response is picked by the state's RetryCount).
    """

    def __init__(self, raw: Mapping[str, Any], *, counting: Counting = "invocation"):
        if counting not in ("invocation", "retry"):
            raise ValueError(f"counting must be 'invocation' or 'retry', not {counting!r}")
        self.raw = raw
        self.counting = counting
        self.test_cases: dict[str, dict[str, dict[str, str]]] = _parse_state_machines(raw)
        self.responses: dict[str, list[MockedResponse]] = _parse_responses(raw)
        for machine, cases in self.test_cases.items():
            for case, states in cases.items():
                for state, response in states.items():
                    if response not in self.responses:
                        raise InvalidMockConfigError(
                            f"test case {machine}#{case} maps state {state!r} to mocked response {response!r}, "
                            "which MockedResponses does not define"
                        )
        for machine, cases in self.test_cases.items():
            for case in cases:
                self.test_case(machine, case)  # checks the numbering of every response it uses

    @classmethod
    def from_file(cls, path: str | Path, *, counting: Counting = "invocation") -> MockConfig:
        """Read a MockConfigFile.json."""
        return cls(json.loads(Path(path).read_text()), counting=counting)

    def test_case(self, state_machine_name: str, test_case_name: str) -> MockTestCase:
        """A fresh moto ``MockTestCase`` for one execution.

        Raises
        ------
        InvalidName
            moto's StartExecution error, if the file has no such case for that state machine.
        """
        try:
            states = self.test_cases[state_machine_name][test_case_name]
        except KeyError:
            raise InvalidName(
                f"Invalid mock test case name '{test_case_name}' for state machine '{state_machine_name}': "
                f"the mock configuration defines {sorted(self.test_cases.get(state_machine_name, {}))}"
            ) from None
        try:
            mocked = [
                StateMockedResponses(state_name=state, mocked_response_name=name, mocked_responses=self.responses[name])
                for state, name in states.items()
            ]
        except RuntimeError as error:  # moto's check that "0", "1-2", "3"... are consecutive
            raise InvalidMockConfigError(str(error)) from error
        if self.counting == "invocation":
            return CountedTestCase(state_machine_name, test_case_name, mocked)
        return MockTestCase(state_machine_name, test_case_name, mocked)


def _parse_state_machines(raw: Mapping[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    machines = raw.get("StateMachines")
    if not isinstance(machines, dict):
        raise InvalidMockConfigError("the mock configuration needs a 'StateMachines' object")
    parsed: dict[str, dict[str, dict[str, str]]] = {}
    for machine, body in machines.items():
        cases = body.get("TestCases") if isinstance(body, dict) else None
        if not isinstance(cases, dict):
            raise InvalidMockConfigError(f"state machine {machine!r} needs a 'TestCases' object")
        for case, states in cases.items():
            if not isinstance(states, dict) or not all(isinstance(name, str) for name in states.values()):
                raise InvalidMockConfigError(f"test case {machine}#{case} must map state names to response names")
        parsed[machine] = cases
    return parsed


def _parse_responses(raw: Mapping[str, Any]) -> dict[str, list[MockedResponse]]:
    responses = raw.get("MockedResponses", {})
    if not isinstance(responses, dict):
        raise InvalidMockConfigError("'MockedResponses' must be an object")
    return {name: [_parse_response(name, key, body) for key, body in ranges.items()] for name, ranges in responses.items()}


def _parse_response(name: str, key: str, body: Any) -> MockedResponse:
    start, _, end = key.strip().partition("-")
    try:
        first, last = int(start), int(end or start)
    except ValueError:
        raise InvalidMockConfigError(f"mocked response {name!r}: key {key!r} is not 'N' or 'N-M'") from None
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ("Return", "Throw"):
        raise InvalidMockConfigError(f"mocked response {name!r}[{key}] needs exactly one of 'Return' or 'Throw'")
    if "Return" in body:
        return MockedResponseReturn(first, last, body["Return"])
    throw = body["Throw"]
    if not (isinstance(throw, dict) and isinstance(throw.get("Error"), str) and isinstance(throw.get("Cause"), str)):
        raise InvalidMockConfigError(f"mocked response {name!r}[{key}]: 'Throw' needs string 'Error' and 'Cause'")
    if throw["Error"].startswith("States."):
        try:
            StatesErrorNameType.from_name(throw["Error"])
        except ValueError:
            raise InvalidMockConfigError(
                f"mocked response {name!r}[{key}] throws {throw['Error']!r}, which is not a States.* error name"
            ) from None
    return MockedResponseThrow(first, last, throw["Error"], throw["Cause"])


# --- the patches ------------------------------------------------------------------------------
def check_moto_compatibility() -> None:
    """Check that every moto internal the adapter patches still exists with the moto 5.2.5 signature.

    Raises
    ------
    MockConfigIncompatibleError
        Naming the first attribute that changed.
    """
    for owner, attribute, parameters in _PATCHES:
        original = getattr(owner, attribute, None)
        if original is None:
            raise MockConfigIncompatibleError(f"moto has no {owner.__name__}.{attribute}; mock_config needs updating")
        found = tuple(inspect.signature(original).parameters)
        if parameters is not None and found != parameters:
            raise MockConfigIncompatibleError(
                f"moto's {owner.__name__}.{attribute}{found} differs from the expected {parameters}; "
                "mock_config needs updating"
            )
    if "mock_test_case" not in inspect.signature(ExecutionWorker.__init__).parameters:
        raise MockConfigIncompatibleError("moto's ExecutionWorker takes no mock_test_case; mock_config needs updating")


def _patched_start_execution(original: Any, config: MockConfig) -> Any:
    def start_execution(self: StepFunctionsParserBackend, state_machine_arn: str, name: str | None = None,
                        execution_input: str | None = None, trace_header: str | None = None) -> Execution:
        base_arn, separator, case = state_machine_arn.partition(TEST_CASE_SEPARATOR)
        if not separator:
            return original(self, state_machine_arn, name, execution_input, trace_header)
        machine = self.describe_state_machine(base_arn)
        # Execution.start() builds the worker on this thread, inside the original call.
        token = _pending_test_case.set(config.test_case(machine.name, case))
        try:
            return original(self, base_arn, name, execution_input, trace_header)
        finally:
            _pending_test_case.reset(token)

    return start_execution


def _patched_worker_factory(original: Any) -> Any:
    def _get_start_execution_worker(self: Execution) -> ExecutionWorker:
        worker = original(self)
        test_case = _pending_test_case.get()
        if test_case is not None:
            if not hasattr(worker, "_mock_test_case"):
                raise MockConfigIncompatibleError("moto's ExecutionWorker has no _mock_test_case attribute")
            worker._mock_test_case = test_case
        return worker

    return _get_start_execution_worker


def _patched_current_response(original: Any) -> Any:
    def get_current_mocked_response(self: Environment) -> MockedResponse:
        if isinstance(self.mock_test_case, CountedTestCase):
            return self.mock_test_case.next_response(self.next_state_name)
        return original(self)

    return get_current_mocked_response


def _eval_mocked_response_throw(env: Environment, mocked_response: MockedResponseThrow) -> None:
    error = mocked_response.error
    if error == TIMEOUT_ERROR:
        details = EventDetails(taskTimedOutEventDetails=TaskTimedOutEventDetails(error=error, cause=mocked_response.cause))
        event_type = HistoryEventType.TaskTimedOut
    else:
        details = EventDetails(taskFailedEventDetails=TaskFailedEventDetails(error=error, cause=mocked_response.cause))
        event_type = HistoryEventType.TaskFailed
    error_name = StatesErrorName.from_name(error) if error.startswith("States.") else CustomErrorName(error)
    raise FailureEventException(FailureEvent(env=env, error_name=error_name, event_type=event_type,
                                             event_details=details))


@contextmanager
def mock_config(config: str | Path | Mapping[str, Any] | MockConfig, *, counting: Counting = "invocation"
                ) -> Iterator[MockConfig]:
    """Serve the test cases of ``config`` to ``start_execution(stateMachineArn="<arn>#<TestCase>")``.

    Parameters
    ----------
    config: str | Path | dict | MockConfig
        A MockConfigFile path, its parsed JSON, or a :class:`MockConfig`.
    counting: str
        How a state's responses are numbered, when ``config`` is not already a :class:`MockConfig`; see there.

    Yields
    ------
    MockConfig
        The parsed configuration.

    Raises
    ------
    MockConfigIncompatibleError
        If the moto internals the adapter patches changed.
    MockConfigActiveError
        If another ``mock_config`` is active.

    Example
    -------
    >>> with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # doctest: +SKIP
    ...     with mock_config("statemachines/MockConfigFile.json"):
    ...         sfn.start_execution(stateMachineArn=arn + "#HappyPath", input=event)
    """
    check_moto_compatibility()
    if not isinstance(config, MockConfig):
        raw = config if isinstance(config, dict) else json.loads(Path(config).read_text())  # type: ignore[arg-type]
        config = MockConfig(raw, counting=counting)
    if not _install_lock.acquire(blocking=False):
        raise MockConfigActiveError("a mock_config is already active; put every test case in the one configuration instead")
    originals = {(owner, attribute): owner.__dict__[attribute] for owner, attribute, _ in _PATCHES}
    replacements = {
        (StepFunctionsParserBackend, "start_execution"): _patched_start_execution(
            originals[(StepFunctionsParserBackend, "start_execution")], config),
        (Execution, "_get_start_execution_worker"): _patched_worker_factory(
            originals[(Execution, "_get_start_execution_worker")]),
        (Environment, "get_current_mocked_response"): _patched_current_response(
            originals[(Environment, "get_current_mocked_response")]),
        (mock_eval_utils, "_eval_mocked_response_throw"): _eval_mocked_response_throw,
    }
    try:
        for (owner, attribute), replacement in replacements.items():
            setattr(owner, attribute, replacement)
        yield config
    finally:
        for (owner, attribute), original in originals.items():
            setattr(owner, attribute, original)
        _install_lock.release()
