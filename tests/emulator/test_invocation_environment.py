"""Each invocation sees only its own function's variables, though every handler runs in one process."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import boto3

from rekpipe.emulator import InProcessLambdas
from rekpipe.emulator.invocation_environment import InvocationEnviron, invocation_environment
from tests.emulator.moto_functions import create_function


def _invoke(function_name: str, event: Any) -> tuple[dict[str, Any], Any]:
    response = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(event))
    return response, json.loads(response["Payload"].read() or b"null")


def _reader(event: Any, context: Any) -> dict[str, Any]:
    return {name: os.environ.get(name) for name in event["names"]} | {"getenv": os.getenv(event["names"][0])}


def test_a_variable_of_another_function_is_absent_in_an_invocation(adapter: InProcessLambdas):
    # GIVEN two functions: the queue URL is set in the router only, the table name in both
    create_function("router", environment={"TASK_TABLE_NAME": "tasks", "IMAGE_QUEUE_URL": "https://q/images"})
    create_function("recorder", environment={"TASK_TABLE_NAME": "tasks"})
    adapter.register("router", _reader)
    adapter.register("recorder", _reader)
    names = ["IMAGE_QUEUE_URL", "TASK_TABLE_NAME"]
    _, routed = _invoke("router", {"names": names})

    # WHEN the recorder reads both after the router ran (so the process environment holds the queue URL)
    _, recorded = _invoke("recorder", {"names": names})

    # THEN the router sees its own two; the recorder sees its table name and no queue URL, as in its own sandbox
    assert routed == {"IMAGE_QUEUE_URL": "https://q/images", "TASK_TABLE_NAME": "tasks", "getenv": "https://q/images"}
    assert recorded == {"IMAGE_QUEUE_URL": None, "TASK_TABLE_NAME": "tasks", "getenv": None}
    # AND outside any invocation (tests, the CLI) the process still reads every applied variable
    assert os.environ["IMAGE_QUEUE_URL"] == "https://q/images"


def test_a_handler_indexing_a_variable_it_lacks_fails_as_in_aws(adapter: InProcessLambdas):
    # GIVEN a function that reads a variable only another function sets
    create_function("owner", environment={"SLOT_QUEUE_URL": "https://q/slots"})
    create_function("borrower", environment={"TASK_TABLE_NAME": "tasks"})
    adapter.register("owner", lambda event, context: {"url": os.environ["SLOT_QUEUE_URL"]})
    adapter.register("borrower", lambda event, context: {"url": os.environ["SLOT_QUEUE_URL"]})
    assert _invoke("owner", {})[1] == {"url": "https://q/slots"}

    # WHEN the borrower runs
    response, payload = _invoke("borrower", {})

    # THEN it fails with the KeyError its first invocation in AWS would raise
    assert response.get("FunctionError")
    assert payload["errorType"] == "KeyError" and "SLOT_QUEUE_URL" in payload["errorMessage"]


def test_variables_no_function_sets_read_through_and_writes_reach_the_process():
    # GIVEN a view over a plain mapping with one managed variable
    base = {"AWS_REGION": "eu-west-1", "TASK_TABLE_NAME": "tasks"}
    environ = InvocationEnviron(base)
    environ.manage({"TASK_TABLE_NAME", "OUTPUT_BUCKET"})

    # WHEN an invocation without the table name reads, lists and writes
    with invocation_environment({"OUTPUT_BUCKET": "out"}):
        seen = dict(environ)
        environ["REKPIPE_PROBE"] = "1"
        missing = "TASK_TABLE_NAME" in environ

    # THEN it sees unmanaged variables and its own, not the hidden one, and its write reached the process
    assert seen == {"AWS_REGION": "eu-west-1", "OUTPUT_BUCKET": "out"}
    assert missing is False
    assert base["REKPIPE_PROBE"] == "1"
    # AND outside the invocation the process view is the base again
    assert dict(environ) == base


def test_concurrent_invocations_each_see_their_own_environment():
    # GIVEN two threads inside invocations of functions with different values of one managed variable
    environ = InvocationEnviron({})
    environ.manage({"OUTPUT_BUCKET"})
    barrier, seen = threading.Barrier(2), {}

    def run(name: str, bucket: str) -> None:
        with invocation_environment({"OUTPUT_BUCKET": bucket}):
            barrier.wait(timeout=5)  # both are inside their invocation at once
            seen[name] = environ.get("OUTPUT_BUCKET")

    threads = [threading.Thread(target=run, args=(n, b)) for n, b in (("a", "bucket-a"), ("b", "bucket-b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # THEN each saw its own value
    assert seen == {"a": "bucket-a", "b": "bucket-b"}


def test_uninstall_restores_the_process_environment_object(aws: Any):
    # GIVEN the process's own os.environ
    original = os.environ
    # WHEN an adapter is installed and then uninstalled
    with InProcessLambdas():
        assert isinstance(os.environ, InvocationEnviron) and os.environ.base is original
    # THEN os.environ is the very same object again
    assert os.environ is original
