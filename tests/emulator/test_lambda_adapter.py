"""The in-process Lambda adapter: every way moto invokes a function runs our handler in this process."""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaFunction

from rekpipe.emulator import (
    AdapterAlreadyInstalledError,
    EnvironmentConflictError,
    InProcessLambdas,
    ServiceNameResolver,
    check_moto_compatibility,
    serialize_dynamodb,
)
from rekpipe.emulator.lambda_adapter import EXPECTED_INVOKE_PARAMETERS, MOTO_INVOKE_METHOD
from tests.emulator.moto_functions import TEST_HANDLERS, create_function

if TYPE_CHECKING:
    from collections.abc import Callable

STATES_ROLE_ARN = "arn:aws:iam::123456789012:role/StatesExecutionRole"


class SlotUnavailableError(Exception):
    """Raised by a test handler; Step Functions should see its class name as the error."""


def _invoke(function_name: str, event: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(event), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def _run_execution(definition: dict[str, Any], execution_input: dict[str, Any]) -> tuple[dict[str, Any], list]:
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="adapter-probe", definition=json.dumps(definition), roleArn=STATES_ROLE_ARN)
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="adapter-run", input=json.dumps(execution_input)
    )
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still RUNNING"
        time.sleep(0.05)
    return described, sfn.get_execution_history(executionArn=execution["executionArn"])["events"]


@pytest.fixture
def recorder() -> tuple[list[tuple[Any, Any]], Callable[[Any, Any], dict[str, Any]]]:
    calls: list[tuple[Any, Any]] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        calls.append((event, context))
        return {"ok": True, "event": event}

    return calls, handler


# --- lambda.invoke ------------------------------------------------------------------------------------
def test_lambda_adapter_request_response_runs_handler(adapter: InProcessLambdas, recorder):
    # GIVEN a function whose handler is registered with the adapter
    calls, handler = recorder
    create_function("echo")
    adapter.register("echo", handler)

    # WHEN it is invoked synchronously
    response, payload = _invoke("echo", {"n": 1})

    # THEN the handler ran here and its return value is the payload
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload == {"ok": True, "event": {"n": 1}}
    assert [event for event, _ in calls] == [{"n": 1}]
    assert [(i.function_name, i.is_error) for i in adapter.invocations] == [("echo", False)]


def test_lambda_adapter_event_invocation_runs_handler(adapter: InProcessLambdas, recorder):
    # GIVEN a registered handler
    calls, handler = recorder
    create_function("echo")
    adapter.register("echo", handler)

    # WHEN it is invoked asynchronously
    response = boto3.client("lambda").invoke(FunctionName="echo", InvocationType="Event", Payload=b'{"n": 2}')

    # THEN Lambda accepts it and the handler has run by the time the call returns (moto runs it inline)
    assert response["StatusCode"] == 202
    assert [event for event, _ in calls] == [{"n": 2}]


def test_lambda_adapter_handler_exception_is_function_error(adapter: InProcessLambdas):
    # GIVEN a handler that raises
    def handler(event: Any, context: Any) -> None:
        raise SlotUnavailableError("no slot for x#Labels")

    create_function("failing")
    adapter.register("failing", handler)

    # WHEN it is invoked
    response, payload = _invoke("failing", {})

    # THEN the response carries the function error and the runtime's error payload
    assert response["FunctionError"]
    assert payload["errorType"] == "SlotUnavailableError"
    assert payload["errorMessage"] == "no slot for x#Labels"
    assert "in handler" in payload["stackTrace"][0]
    assert adapter.invocations[-1].error_type == "SlotUnavailableError"


def test_lambda_adapter_unserializable_result_is_marshal_error(adapter: InProcessLambdas):
    # GIVEN a handler returning something JSON cannot encode
    create_function("marshal")
    adapter.register("marshal", lambda event, context: {"when": object()})

    # WHEN it is invoked
    response, payload = _invoke("marshal", {})

    # THEN the error is the runtime's marshalling error
    assert response["FunctionError"]
    assert payload["errorType"] == "Runtime.MarshalError"


def test_lambda_adapter_function_without_handler_is_import_error(adapter: InProcessLambdas):
    # GIVEN a function whose service name has no module in the handler package
    create_function("nowhere", service="no_such_function")

    # WHEN it is invoked
    response, payload = _invoke("nowhere", {})

    # THEN it fails like a Lambda whose module cannot be imported
    assert response["FunctionError"]
    assert payload["errorType"] == "Runtime.ImportModuleError"


# --- environment and context --------------------------------------------------------------------------
def test_lambda_adapter_environment_applied_before_module_import(adapter: InProcessLambdas):
    # GIVEN a function whose module reads PROBE_TABLE at import, and no such variable in the process
    assert "PROBE_TABLE" not in os.environ
    create_function("env-probe", service="env_probe", environment={"PROBE_TABLE": "tasks-1"})

    # WHEN it is invoked twice
    _, first = _invoke("env-probe", {"n": 1})
    _, second = _invoke("env-probe", {"n": 2})

    # THEN the module saw the function's value, was imported once, and the variable is set in the process
    assert first["table"] == second["table"] == "tasks-1"
    assert first["importedAt"] == second["importedAt"]
    assert first["function"] == "env-probe"
    assert os.environ["PROBE_TABLE"] == "tasks-1"


def test_lambda_adapter_reimports_module_for_new_adapter(aws: Any):
    # GIVEN a module already imported by an earlier adapter with another value
    with InProcessLambdas(ServiceNameResolver(package=TEST_HANDLERS)):
        create_function("env-probe", service="env_probe", environment={"PROBE_TABLE": "old"})
        _, before = _invoke("env-probe", {})
    boto3.client("lambda").delete_function(FunctionName="env-probe")

    # WHEN a new adapter runs a function with a new value
    with InProcessLambdas(ServiceNameResolver(package=TEST_HANDLERS)):
        create_function("env-probe", service="env_probe", environment={"PROBE_TABLE": "new"})
        _, after = _invoke("env-probe", {})

    # THEN the module was imported again and sees the new value; the process environment is restored
    assert (before["table"], after["table"]) == ("old", "new")
    assert after["importedAt"] > before["importedAt"]
    assert "PROBE_TABLE" not in os.environ


def test_lambda_adapter_conflicting_environment_raises(adapter: InProcessLambdas, recorder):
    # GIVEN two functions that disagree on a shared variable
    _, handler = recorder
    create_function("first", environment={"TASK_TABLE_NAME": "tasks-a"})
    create_function("second", environment={"TASK_TABLE_NAME": "tasks-b"})
    adapter.register("first", handler)
    adapter.register("second", handler)
    _invoke("first", {})

    # WHEN the second is invoked
    with pytest.raises(EnvironmentConflictError) as raised:
        _invoke("second", {})

    # THEN the error names both values and functions
    assert (raised.value.key, raised.value.value, raised.value.other_value) == ("TASK_TABLE_NAME", "tasks-b", "tasks-a")
    assert "first" in str(raised.value) and "second" in str(raised.value)


def test_lambda_adapter_context_reflects_function_configuration(adapter: InProcessLambdas, recorder):
    # GIVEN a function with a 2 s timeout and 512 MB
    calls, handler = recorder
    arn = create_function("ctx", timeout=2, memory_size=512)["FunctionArn"]
    adapter.register("ctx", handler)

    # WHEN it is invoked
    _invoke("ctx", {})

    # THEN the context describes the function and counts down from its timeout
    _, context = calls[0]
    assert (context.function_name, context.invoked_function_arn, context.memory_limit_in_mb) == ("ctx", arn, 512)
    assert context.function_version == "$LATEST"
    assert context.aws_request_id == adapter.invocations[-1].request_id
    assert context.log_group_name == "/aws/lambda/ctx"
    assert 1000 < context.get_remaining_time_in_millis() <= 2000


def test_lambda_adapter_overrun_is_reported_as_timeout(adapter: InProcessLambdas):
    # GIVEN a handler that outlives its function's 1 s timeout
    create_function("slow", timeout=1)
    adapter.register("slow", lambda event, context: time.sleep(1.05) or {"late": True})

    # WHEN it is invoked
    response, payload = _invoke("slow", {})

    # THEN its result is replaced by the Sandbox.Timedout error
    assert response["FunctionError"]
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


# --- other callers ------------------------------------------------------------------------------------
def test_lambda_adapter_step_functions_task_runs_handler_and_error_type_is_catchable(adapter: InProcessLambdas):
    # GIVEN a state machine calling one function that answers and one that raises SlotUnavailableError
    def fails(event: Any, context: Any) -> None:
        raise SlotUnavailableError("busy")

    echo = create_function("echo")["FunctionArn"]
    failing = create_function("failing")["FunctionArn"]
    adapter.register("echo", lambda event, context: {"holder": event["holder"]})
    adapter.register("failing", fails)
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": echo,
                    "Payload": {"holder.$": "States.Format('{}#x', $$.Execution.Name)"},
                },
                "ResultSelector": {"holder.$": "$.Payload.holder"},
                "ResultPath": "$.echo",
                "Next": "Fail",
            },
            "Fail": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": failing, "Payload": {}},
                "Catch": [{"ErrorEquals": ["SlotUnavailableError"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }

    # WHEN it runs
    described, events = _run_execution(definition, {})

    # THEN the first task got the handler's result and the error name is the exception's class name
    output = json.loads(described["output"])
    assert described["status"] == "SUCCEEDED"
    assert output["echo"]["holder"] == "adapter-run#x"
    assert output["error"]["Error"] == "SlotUnavailableError"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "busy"
    failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failed] == ["SlotUnavailableError"]


def test_lambda_adapter_sns_subscription_runs_handler(adapter: InProcessLambdas, recorder):
    # GIVEN a function subscribed to a topic
    calls, handler = recorder
    arn = create_function("on-notice")["FunctionArn"]
    adapter.register("on-notice", handler)
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="video-jobs")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)

    # WHEN a message is published
    sns.publish(TopicArn=topic, Message=json.dumps({"JobId": "j-1", "Status": "SUCCEEDED"}))

    # THEN the handler received the SNS event
    ((event, _),) = calls
    assert json.loads(event["Records"][0]["Sns"]["Message"]) == {"JobId": "j-1", "Status": "SUCCEEDED"}


def test_lambda_adapter_sqs_event_source_mapping_runs_handler(adapter: InProcessLambdas, recorder):
    # GIVEN a function mapped to a queue
    calls, handler = recorder
    create_function("consumer")
    adapter.register("consumer", handler)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="images")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("lambda").create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="consumer")

    # WHEN a message is sent
    sqs.send_message(QueueUrl=queue_url, MessageBody="task-1")

    # THEN the handler received it as an SQS record
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [record["body"] for event, _ in calls for record in event["Records"]] == ["task-1"]


# --- installation and moto ------------------------------------------------------------------------------
def test_lambda_adapter_only_one_installed_at_a_time(adapter: InProcessLambdas):
    # GIVEN an installed adapter
    # WHEN a second one is installed
    # THEN it is refused
    with pytest.raises(AdapterAlreadyInstalledError):
        InProcessLambdas().install()


def test_lambda_adapter_uninstall_restores_moto(aws: Any):
    # GIVEN moto's own method
    original = LambdaFunction.__dict__[MOTO_INVOKE_METHOD]

    # WHEN an adapter is installed and removed
    with InProcessLambdas():
        patched = LambdaFunction.__dict__[MOTO_INVOKE_METHOD]

    # THEN moto's method is back
    assert patched is not original
    assert LambdaFunction.__dict__[MOTO_INVOKE_METHOD] is original


def test_lambda_adapter_guard_moto_private_invoke_unchanged():
    # GIVEN the moto release the adapter was written against
    # WHEN we inspect the private method it replaces and its callers
    # THEN they are as expected; if this fails, moto changed: re-read moto/awslambda/models.py and update
    # rekpipe/emulator/lambda_adapter.py before changing the pin
    assert moto.__version__ == "5.2.5"
    assert tuple(inspect.signature(check_moto_compatibility()).parameters) == EXPECTED_INVOKE_PARAMETERS
    assert "self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)
    assert "res, errored, logs" in inspect.getsource(LambdaFunction.invoke)


def test_lambda_adapter_serialize_dynamodb_makes_conditional_writes_atomic(aws: Any):
    # GIVEN a semaphore-like item and 30 threads racing to take one of 3 slots
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="race",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="race", Item={"pk": {"S": "sem"}, "holders": {"M": {}}})
    winners: list[int] = []

    def take(index: int) -> None:
        try:
            boto3.client("dynamodb").update_item(
                TableName="race",
                Key={"pk": {"S": "sem"}},
                UpdateExpression="SET holders.#h = :now",
                ConditionExpression="size(holders) < :limit AND attribute_not_exists(holders.#h)",
                ExpressionAttributeNames={"#h": f"h{index}"},
                ExpressionAttributeValues={":now": {"S": "t"}, ":limit": {"N": "3"}},
            )
            winners.append(index)
        except ClientError:
            pass

    # WHEN they run with moto's DynamoDB serialized
    with serialize_dynamodb():
        threads = [threading.Thread(target=take, args=(i,)) for i in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # THEN exactly three win, and the item agrees
    item = client.get_item(TableName="race", Key={"pk": {"S": "sem"}})["Item"]
    assert len(winners) == 3
    assert len(item["holders"]["M"]) == 3
