"""Powertools' metric sets are each invocation's own, though every handler runs in one process."""

from __future__ import annotations

import io
import json
import threading
from contextlib import redirect_stdout
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from rekpipe.emulator import InProcessLambdas
from rekpipe.emulator.sandbox_state import PerInvocationDict
from tests.emulator.moto_functions import create_function


def _invoke(function_name: str, event: Any) -> dict[str, Any]:
    response = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(event))
    return {"error": response.get("FunctionError"), "payload": json.loads(response["Payload"].read() or b"null")}


def test_concurrent_invocations_flush_only_their_own_metrics_without_racing(adapter: InProcessLambdas):
    # GIVEN two functions whose handlers share nothing but Powertools' Metrics class, as every handler module does
    assert isinstance(Metrics._metrics, PerInvocationDict)
    first, second = Metrics(namespace="Probe", service="first"), Metrics(namespace="Probe", service="second")
    inside = threading.Barrier(2)
    adds = 200

    def handler_for(metrics: Metrics, name: str) -> Any:
        def handler(event: Any, context: Any) -> dict[str, Any]:
            inside.wait(timeout=10)  # both invocations run at once
            for n in range(adds):  # many adds while the other one flushes
                metrics.add_metric(name=f"{name}-{n % 7}", unit=MetricUnit.Count, value=1)
            serialized = metrics.serialize_metric_set()
            metrics.clear_metrics()
            return {"names": sorted(m["Name"] for m in serialized["_aws"]["CloudWatchMetrics"][0]["Metrics"]),
                    "service": serialized["service"], "left": len(metrics.metric_set)}
        return handler

    create_function("first-fn")
    create_function("second-fn")
    adapter.register("first-fn", handler_for(first, "a"))
    adapter.register("second-fn", handler_for(second, "b"))

    # WHEN both are invoked at the same time
    results: dict[str, dict[str, Any]] = {}
    threads = [threading.Thread(target=lambda f=f: results.__setitem__(f, _invoke(f, {})))
               for f in ("first-fn", "second-fn")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # THEN neither failed, each flushed its own seven metrics under its own service, and each cleared only its own
    assert results["first-fn"] == {"error": None, "payload": {"names": [f"a-{n}" for n in range(7)],
                                                              "service": "first", "left": 0}}
    assert results["second-fn"] == {"error": None, "payload": {"names": [f"b-{n}" for n in range(7)],
                                                               "service": "second", "left": 0}}


def test_a_metric_added_in_one_invocation_is_not_in_the_next(adapter: InProcessLambdas):
    # GIVEN a handler that adds a metric and never flushes (as if it died before log_metrics flushed)
    metrics = Metrics(namespace="Probe", service="leaky")
    adapter.register("leaky", lambda event, context: (metrics.add_metric(name="Seen", unit=MetricUnit.Count,
                                                                         value=1), len(metrics.metric_set))[1])
    create_function("leaky")
    # WHEN it runs twice
    counts = [_invoke("leaky", {})["payload"] for _ in range(2)]
    # THEN each invocation started with an empty metric set, as a new sandbox would
    assert counts == [1, 1]


def test_uninstall_puts_powertools_own_dicts_back(aws: Any):
    # GIVEN Powertools' own class-level dict
    original = Metrics._metrics
    # WHEN an adapter is installed and uninstalled
    with InProcessLambdas():
        assert Metrics._metrics is not original
    # THEN the original is back, and metrics flush as usual outside the emulator
    assert Metrics._metrics is original
    metrics = Metrics(namespace="Probe", service="plain")
    metrics.add_metric(name="Plain", unit=MetricUnit.Count, value=1)
    out = io.StringIO()
    with redirect_stdout(out):
        metrics.flush_metrics()
    assert json.loads(out.getvalue())["Plain"] == [1.0]
