"""EventBridge's part of the deployed stack, acted out: the scheduled rules (the slot tick, the stuck-task finder)
and the "Step Functions Execution Status Change" rule.

Each rule runs on a thread of its own. A scheduled rule invokes its Lambda targets and sends to its SQS targets
(EventBridge Scheduler's ``<aws.scheduler.*>`` context attributes filled in); the status rule lists the executions
that ended and delivers each once per rule. A target is invoked only if the function's resource policy lets
``events.amazonaws.com`` invoke it from that rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rekpipe.emulator import sim_timers
from rekpipe.emulator.deploy import ACCOUNT_ID
from rekpipe.emulator.event_sources import aws_client, invoke

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.emulator.deploy import QueueTarget, RuleSpec
    from rekpipe.simulator.clock import SimClock

LOG = logging.getLogger("rekpipe.emulator")
RULE_IDLE_POLL_SECONDS = 2.0
"""The longest pause of the execution status watcher while no execution ends (a status change is then
delivered within 2 s; EventBridge promises no delivery time either)."""


def iso_time(epoch: float | None = None) -> str:
    """An event's ``time``: ISO 8601 UTC to the second, of ``epoch`` or now."""
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ended_executions(region: str, machines: list[str]) -> int | None:
    """How many executions of ``machines`` are no longer RUNNING, read from moto's backend in this process
    (None if moto's model is not what this expects, and then the watcher lists every time).

    The status rules list executions only when this count moved, so an idle runtime makes no Step Functions calls;
    an execution that ends raises the count, so none is missed."""
    try:
        from moto.stepfunctions.responses import get_backend  # the interpreter's backend when it executes ASL

        backend = get_backend(ACCOUNT_ID, region)
        wanted = set(machines)
        return sum(1 for machine in list(backend.state_machines) if machine.arn in wanted
                   for execution in list(machine.executions) if execution.status != "RUNNING")
    except Exception:  # a moto upgrade changed its model: fall back to listing
        return None


class EventRules:
    """The stack's EventBridge rules, each on a thread, until :meth:`stop`.

    Parameters
    ----------
    rules: list[RuleSpec]
        The deployed stack's rules.
    region: str
    may_invoke: Callable[[str, str, str], bool]
        (function, service principal, source ARN) -> whether the function's resource policy allows the invoke.
    rule_poll_seconds: float
        The status watcher's pause after a delivery; it doubles up to ``RULE_IDLE_POLL_SECONDS`` while none comes.
    schedule_seconds: float | None
        Overrides every scheduled rule's period.
    sim_clock: SimClock | None
        With the timers on the simulator's clock: the slot tick's period is scaled, and scheduled events carry
        simulated times.
    """

    def __init__(self, rules: list[RuleSpec], *, region: str, may_invoke: Callable[[str, str, str], bool],
                 rule_poll_seconds: float, schedule_seconds: float | None = None,
                 sim_clock: SimClock | None = None) -> None:
        self.rules = rules
        self.region = region
        self.may_invoke = may_invoke
        self.rule_poll_seconds = rule_poll_seconds
        self.schedule_seconds = schedule_seconds
        self.sim_clock = sim_clock
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._seen_executions: set[tuple[str, str]] = set()
        """(rule ARN, execution ARN) pairs delivered: each rule sees each ending once."""

    def start(self) -> EventRules:
        """One thread per rule: a schedule fires every period, the status rule watches executions end."""
        for rule in self.rules:
            if rule.schedule_seconds is not None:
                period = self.schedule_seconds or rule.schedule_seconds
                if self.sim_clock is not None and rule.queue_targets:
                    # The slot tick; the stuck-task finder compares wall-clock times, so it keeps its period.
                    period = sim_timers.scaled_period(period, self.sim_clock.scale)
                target = self._schedule_loop
                args: tuple[Any, ...] = (rule.function_names, period, rule.rule_arn, rule.queue_targets)
            else:
                target = self._status_loop
                args = (rule.function_names, rule.state_machine_arns, rule.statuses, rule.rule_arn,
                        rule.queue_targets)
            thread = threading.Thread(target=target, args=args, daemon=True, name="rekpipe-rule")
            thread.start()
            self._threads.append(thread)
        return self

    def request_stop(self) -> None:
        """Tell every rule's thread to stop after the delivery it is making, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every rule's thread and wait for it (each finishes the delivery it is making)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def fire_schedules_now(self) -> None:
        """Fire every scheduled rule once, as if its period had elapsed."""
        for rule in self.rules:
            if rule.schedule_seconds is not None:
                self._fire_schedule(rule.function_names, rule.rule_arn, rule.queue_targets)

    def _schedule_loop(self, functions: list[str], period: float, rule_arn: str, queues: list[QueueTarget]) -> None:
        while not self._stop.wait(period):
            with contextlib.suppress(Exception):
                self._fire_schedule(functions, rule_arn, queues)

    def _fire_schedule(self, functions: list[str], rule_arn: str = "", queues: list[QueueTarget] | None = None) -> None:
        event = self._event("Scheduled Event", "aws.events", self._schedule_time(), [rule_arn] if rule_arn else [], {})
        self._deliver(aws_client("lambda", self.region), functions, rule_arn, queues or [], event)

    def _event(self, detail_type: str, source: str, time: str, resources: list[str],
               detail: dict[str, Any]) -> dict[str, Any]:
        """An EventBridge event envelope of this account and region."""
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
                "account": ACCOUNT_ID, "time": time, "region": self.region, "resources": resources, "detail": detail}

    def _deliver(self, lam: Any, functions: list[str], rule_arn: str, queues: list[QueueTarget],
                 event: dict[str, Any]) -> None:
        """Invoke each Lambda target the function's resource policy lets the rule invoke, then send to the queues."""
        for function in functions:
            if self.may_invoke(function, "events.amazonaws.com", rule_arn):
                invoke(lam, function, event)
        self._send_to_queues(queues, event)

    def _schedule_time(self) -> str:
        """A scheduled event's time: the simulated time when the schedules run on the simulator's clock, so
        two ticks a few real seconds apart keep distinct bodies (the slot queue deduplicates on content)."""
        if self.sim_clock is not None:
            return iso_time(self.sim_clock.now())
        return iso_time()

    def _send_to_queues(self, queues: list[QueueTarget], event: dict[str, Any]) -> None:
        """Deliver an event to SQS targets as EventBridge and Scheduler do: the target's Input (its
        ``<aws.scheduler.*>`` context attributes filled in) or else the event, in the target's group."""
        if not queues:
            return
        sqs = aws_client("sqs", self.region)
        for target in queues:
            body = target.input if target.input is not None else json.dumps(event)
            for attribute, value in (("<aws.scheduler.scheduled-time>", event["time"]),
                                     ("<aws.scheduler.execution-id>", event["id"]),
                                     ("<aws.scheduler.schedule-arn>", ",".join(event["resources"]))):
                body = body.replace(attribute, value)
            url = sqs.get_queue_url(QueueName=target.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
            arguments: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
            if target.message_group_id:
                # The queue's content-based deduplication applies, as for both services' FIFO targets.
                arguments["MessageGroupId"] = target.message_group_id
            sqs.send_message(**arguments)

    def _status_loop(self, functions: list[str], machines: list[str], statuses: list[str], rule_arn: str,
                     queues: list[QueueTarget] | None = None) -> None:
        """Act out EventBridge's "Step Functions Execution Status Change" rule."""
        sfn, lam = aws_client("stepfunctions", self.region), aws_client("lambda", self.region)
        pause = self.rule_poll_seconds
        listed_at: int | None = None
        while not self._stop.wait(pause):
            delivered = 0
            ended = ended_executions(self.region, machines)
            if ended is not None and ended == listed_at:
                pause = min(pause * 2, RULE_IDLE_POLL_SECONDS)
                continue  # no execution ended since the last listing: nothing new to deliver
            try:
                for machine in machines:
                    for status in statuses:
                        pages = sfn.get_paginator("list_executions").paginate(
                            stateMachineArn=machine, statusFilter=status
                        )
                        for page in pages:
                            for execution in page["executions"]:
                                delivered += self._deliver_status(lam, functions, machine, execution, rule_arn,
                                                                  queues or [])
                listed_at = ended
            except Exception:
                LOG.exception("execution status watcher failed")
            # Quiet while nothing ends: the pause doubles up to RULE_IDLE_POLL_SECONDS, back at once on news.
            pause = self.rule_poll_seconds if delivered else min(pause * 2, RULE_IDLE_POLL_SECONDS)

    def _deliver_status(self, lam: Any, functions: list[str], machine: str, execution: dict[str, Any],
                        rule_arn: str = "", queues: list[QueueTarget] | None = None) -> int:
        """Deliver one execution's status change once per rule; returns 1 when it was new."""
        arn = execution["executionArn"]
        if (rule_arn, arn) in self._seen_executions:
            return 0
        self._seen_executions.add((rule_arn, arn))
        detail = {
            "executionArn": arn,
            "stateMachineArn": machine,
            "name": execution["name"],
            "status": execution["status"],
            "startDate": int(execution["startDate"].timestamp() * 1000),
            "stopDate": int(execution["stopDate"].timestamp() * 1000) if execution.get("stopDate") else None,
            "input": None,
            "output": None,
        }
        event = self._event("Step Functions Execution Status Change", "aws.states", iso_time(), [arn], detail)
        self._deliver(lam, functions, rule_arn, queues or [], event)
        return 1


