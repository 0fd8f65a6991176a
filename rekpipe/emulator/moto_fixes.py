"""Small, reversible corrections to moto 5.2.5 where it departs from AWS in ways the pipeline sees.

Each fix is applied only while the embedded runtime runs, and ``tests/emulator`` checks that the
patched functions still exist with the expected signatures, so a moto upgrade fails loudly.

1. S3 notices omit ``versionId`` (AWS sends it for versioned buckets; task ids are keyed on it).
   Upstream: docs/upstream/s3-notification-version-id.md (still in moto at 0af643a, 2026-08-22).
2. ``SendTaskFailure`` drops ``cause`` before it reaches the execution (AWS keeps it; the video
   outcome records Rekognition's StatusMessage from it).
   Upstream: docs/upstream/sfn-send-task-failure-cause.md (still in moto at 0af643a, 2026-08-22).
3. ``TransactWriteItems`` deep-copies every table it touches before each transaction and, when
   one is cancelled (ConditionalCheckFailed, which the task table uses on purpose for idempotent
   transitions), puts the *copy* back in place of the table. The copy has a new stream shard, so
   stream readers lose their place, and the copies make N transactions cost O(N^2). The
   replacement checks every condition first and writes only when all hold (DynamoDB's
   all-or-nothing semantics), restoring the touched items and stream records if a write fails
   half way. Atomicity across threads comes from the adapter's DynamoDB lock.
   Upstream: docs/upstream/dynamodb-transact-rollback-replaces-table.md (still in moto at 0af643a, 2026-08-22).
4. Every backend lookup takes a process-wide lock and scans all backend dicts; a lookup of an
   account backend that exists skips both (a performance fix, no behaviour change).
   Upstream: docs/upstream/backend-dict-lookup-lock.md (lock still in moto at 0af643a, 2026-08-22).
5. S3 checksums: a real CRC64NVME without ``awscrt``, and the CRC64NVME S3 adds to an upload that
   carries no checksum (``rekpipe.emulator.s3_checksums``).
   Upstream: docs/upstream/s3-checksums-crc64nvme.md.
6. ``StopExecution`` of an execution waiting on a task token leaves it RUNNING until the token's
   timeout (AWS stops it at once): the stop now interrupts the execution's callback waits, so the
   execution ends and its status change (the slot dispatcher's cancel) follows promptly.
   Upstream: docs/upstream/sfn-stop-execution-waiting-on-token.md.
7. A long-polling ``ReceiveMessage`` on a FIFO queue reads which message groups are in flight once, when
   it starts, so a message of a group that another consumer took meanwhile is handed out too: two
   consumers then hold one group at once (SQS delivers a group's messages to one consumer at a time,
   SQS Developer Guide, "Using the message group ID"). The slot dispatcher relies on that order. A FIFO
   receive now checks the groups at every look, and one receive at a time per queue; an empty queue
   still blocks on moto's condition variable, so an idle long poll stays quiet.
   Upstream: docs/upstream/sqs-fifo-long-poll-stale-groups.md.
   Standard queues get the same one-look-at-a-time lock: moto's receive is not synchronised, and two
   pollers receiving at once could hand one message to both (its first receipt handle then goes stale, so
   the message came back only after the queue's visibility timeout) or leave a message invisible that
   nobody received; a CI run saw 5 images of a local run sit QUEUED past its 120 s timeout.
8. A Task state whose ``HeartbeatSeconds`` passed without a heartbeat fails with ``States.Timeout``; AWS
   fails it with ``States.HeartbeatTimeout`` ("A Task state failed to send a heartbeat for a period longer
   than the HeartbeatSeconds value", Step Functions Developer Guide, "Error names"), which RunJob retries
   (a new want) while ``States.Timeout`` (its TimeoutSeconds backstop) is not.
   Upstream: docs/upstream/sfn-heartbeat-timeout-error-name.md.
9. ``SendTaskHeartbeat``/``SendTaskSuccess``/``SendTaskFailure`` look for the token in every RUNNING
   execution and fail with ``AttributeError`` (a 500) when one of them was just started and has no
   evaluation environment yet; AWS answers for the token alone. Executions without an environment (no
   token can be theirs yet) are now skipped.
   Upstream: docs/upstream/sfn-task-token-calls-race-new-executions.md.
10. ``SendTaskHeartbeat`` of a token whose Task state has sent its message but not yet armed its heartbeat
   timer fails with ``InvalidToken``: moto registers the token, calls the integration (the SQS send that
   carries the token), and only then sets up the heartbeat endpoint. A consumer that heartbeats at once (the
   slot dispatcher checks a waiter's token before it grants) took the token for closed and dropped the
   waiter, which then hung until its HeartbeatSeconds. AWS accepts a heartbeat for any token of a task in
   progress ("SendTaskHeartbeat ... Used by activity workers and task states using the callback pattern",
   Step Functions API Reference); a registered token without its heartbeat timer now answers success.
   Upstream: docs/upstream/sfn-heartbeat-before-timer-armed.md.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from rekpipe.emulator.patching import replace, undo_all
from rekpipe.emulator.s3_checksums import s3_checksums_as_aws

if TYPE_CHECKING:
    from rekpipe.emulator.patching import Restore


def _s3_notices_carry_version() -> Restore:
    from moto.s3 import notifications

    original = notifications._get_s3_event

    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if version and version != "null":
            event["Records"][0]["s3"]["object"]["versionId"] = version
        event["Records"][0]["s3"]["object"]["sequencer"] = f"{int(time.time() * 1e6):016X}"
        return event

    return replace(notifications, "_get_s3_event", with_version)


def _send_task_failure_keeps_cause() -> Restore:
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    return replace(StepFunctionResponse, "send_task_failure", send_task_failure)


def _transactions_keep_tables() -> Restore:
    from moto.dynamodb.models import DynamoDBBackend

    return replace(DynamoDBBackend, "transact_write_items", _transact_write_items)


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import get_filter_expression

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    plan: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table = self.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        failed = False
        if condition is not None:
            check = get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                          op.get("ExpressionAttributeValues"))
            failed = not check.expr(current)
        if failed:
            old = current.to_json()["Attributes"] if (
                current is not None and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD") else None
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            errors.append((None, None, None))
        plan.append((op_type, op, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    _apply(self, plan)


def _apply(backend: Any, plan: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """Write every planned action; on a failure part way, undo the ones already written."""
    saved = []
    for _, op, key in plan:
        table = backend.get_table(op["TableName"])
        shard = table.stream_shard
        saved.append((table, key, copy.deepcopy(backend.get_item(op["TableName"], key)),
                      shard, len(shard.items) if shard is not None else 0))
    try:
        for op_type, op, key in plan:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if op_type == "Put":
                backend.put_item(op["TableName"], op["Item"], condition_expression=condition,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                backend.delete_item(op["TableName"], key, condition_expression=condition,
                                    expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                    condition_expression=condition, expression_attribute_names=names,
                                    expression_attribute_values=values)
    except Exception:
        for table, key, item, shard, length in reversed(saved):
            hash_value, range_value = backend.get_keys_value(table, key)
            if item is None:
                if range_value is not None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items.pop(hash_value, None)
            elif range_value is not None:
                table.items[hash_value][range_value] = item
            else:
                table.items[hash_value] = item
            if shard is not None:
                del shard.items[length:]
        raise


def _backend_lookup_without_global_lock() -> Restore:
    """Look up an existing account backend without moto's process-wide lock.

    ``BackendDict.__getitem__`` takes one global lock and scans the list of every backend dict on
    *each* lookup, and every request makes several (authorization more). With twenty poller and
    handler threads that lock is the emulator's hottest spot (58 % of busy samples in a 1,000-object
    backfill). An account backend, once created, is never replaced, so a lookup that finds it needs
    neither the lock nor the scan; creating one still goes through moto's locked path.

    Upstream: docs/upstream/backend-dict-lookup-lock.md (still in moto at 0af643a, 2026-08-22).
    """
    from moto.core.base_backend import BackendDict

    original = BackendDict.__dict__["_create_account_specific_backend"]

    def create_if_missing(self: Any, account_id: str) -> None:
        if self.__dict__.get("_rekpipe_registered") and dict.__contains__(self, account_id):
            return
        original(self, account_id)
        self.__dict__["_rekpipe_registered"] = True

    return replace(BackendDict, "_create_account_specific_backend", create_if_missing)


def _stop_interrupts_token_waits() -> Restore:
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    original = Environment.set_stop

    def set_stop(self: Any, stop_date: Any, cause: str | None, error: str | None) -> None:
        original(self, stop_date=stop_date, cause=cause, error=error)
        for endpoint in list(self.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()

    return replace(Environment, "set_stop", set_stop)


_FIFO_BLOCKED_RECHECK_SECONDS = 0.05
"""A FIFO receive whose visible messages all belong to in-flight groups looks again after this long."""


def _sqs_receives_one_at_a_time_per_queue() -> Restore:
    import threading

    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
                        message_attribute_names: list[str] | None = None) -> list[Any]:
        queue = self.get_queue(queue_name)
        with guard:
            lock = locks.setdefault(f"{id(self)}:{queue_name}", threading.Lock())
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with lock:  # one look at a time: the pending groups cannot change under it
                result = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            if queue.fifo_queue and queue.messages:  # visible, but their groups are in flight: look again shortly
                time.sleep(min(_FIFO_BLOCKED_RECHECK_SECONDS, remaining))
            else:
                queue.wait_for_messages(min(1.0, remaining))

    return replace(SQSBackend, "receive_message", receive_message)


def _token_calls_skip_executions_not_yet_running() -> Restore:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.__dict__["_get_executions"]

    def get_executions(self: Any, execution_status: Any = None) -> list[Any]:
        return [execution for execution in original(self, execution_status)
                if getattr(getattr(execution, "exec_worker", None), "env", None) is not None]

    return replace(StepFunctionsParserBackend, "_get_executions", get_executions)


def _heartbeat_accepted_before_its_timer_is_armed() -> Restore:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.__dict__["notify_heartbeat"]

    def notify_heartbeat(self: Any) -> bool:
        if getattr(self, "_heartbeat_endpoint", None) is None:
            return True  # the token is live (in the pool, no outcome); its timer starts in full when armed
        return original(self)

    return replace(CallbackEndpoint, "notify_heartbeat", notify_heartbeat)


def _heartbeat_timeout_is_its_own_error() -> Restore:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTask.__dict__["_from_error"]

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, HeartbeatTimeoutError):
            name = StatesErrorNameType.StatesHeartbeatTimeout
            return FailureEvent(env=env, error_name=StatesErrorName(typ=name), event_type=HistoryEventType.TaskTimedOut,
                                event_details=EventDetails(taskTimedOutEventDetails=TaskTimedOutEventDetails(
                                    error=name.to_name())))
        return original(self, env, ex)

    return replace(StateTask, "_from_error", from_error)


FIXES = (
    _token_calls_skip_executions_not_yet_running,  # 9
    _heartbeat_accepted_before_its_timer_is_armed,  # 10
    _heartbeat_timeout_is_its_own_error,  # 8
    _sqs_receives_one_at_a_time_per_queue,  # 7
    _stop_interrupts_token_waits,  # 6
    _s3_notices_carry_version,  # 1
    _send_task_failure_keeps_cause,  # 2
    _transactions_keep_tables,  # 3
    _backend_lookup_without_global_lock,  # 4
    s3_checksums_as_aws,  # 5
)
"""Applied in this order (numbered as in the module's docstring); each returns the function that undoes it."""


def install() -> Restore:
    """Apply every fix; returns a function that undoes them all (in reverse order)."""
    return undo_all([fix() for fix in FIXES])
