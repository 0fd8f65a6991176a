"""The video semaphore on moto's DynamoDB, with a fake Step Functions that tracks task tokens like AWS does."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rekpipe.emulator import serialize_dynamodb
from rekpipe_shared.semaphore import SemaphoreSnapshot, VideoSemaphore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TABLE = "semaphore-table"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:video"


# --- fakes and fixtures ---------------------------------------------------------------------------
@dataclass
class _Token:
    execution_arn: str
    state: str = "waiting"  # waiting | succeeded | timed_out
    output: dict[str, Any] | None = None
    event: threading.Event = field(default_factory=threading.Event)


class FakeStepFunctions:
    """SendTaskSuccess and DescribeExecution with AWS's token rules.

    A token accepts one SendTaskSuccess while its task waits and its execution is RUNNING; after that
    (success, task timeout, execution ended) it answers TaskTimedOut, and an unknown token InvalidToken.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tokens: dict[str, _Token] = {}
        self.statuses: dict[str, str] = {}
        self.sent: list[tuple[float, str, dict[str, Any]]] = []
        self.rejected: list[tuple[str, str]] = []

    def start_execution(self, name: str) -> str:
        arn = f"arn:aws:states:us-east-1:123456789012:execution:video:{name}"
        self.statuses[arn] = "RUNNING"
        return arn

    def end_execution(self, arn: str, status: str) -> None:
        with self._lock:
            self.statuses[arn] = status

    def new_token(self, execution_arn: str) -> str:
        token = f"token-{uuid.uuid4().hex}"
        self.tokens[token] = _Token(execution_arn)
        return token

    def wait(self, token: str, timeout: float) -> bool:
        """Wait like a ``.waitForTaskToken`` task with TimeoutSeconds; False means States.Timeout."""
        entry = self.tokens[token]
        entry.event.wait(timeout)
        with self._lock:
            if entry.state == "succeeded":
                return True
            entry.state = "timed_out"
            return False

    def outcome(self, token: str) -> dict[str, Any] | None:
        return self.tokens[token].output

    # --- the client API the semaphore calls ---------------------------------------------------------
    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        with self._lock:
            entry = self.tokens.get(taskToken)
            if entry is None:
                self.rejected.append((taskToken, "InvalidToken"))
                raise _client_error("InvalidToken", "SendTaskSuccess")
            if entry.state != "waiting" or self.statuses[entry.execution_arn] != "RUNNING":
                self.rejected.append((taskToken, "TaskTimedOut"))
                raise _client_error("TaskTimedOut", "SendTaskSuccess")
            entry.state, entry.output = "succeeded", json.loads(output)
            self.sent.append((time.monotonic(), taskToken, entry.output))
            entry.event.set()
        return {}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if executionArn not in self.statuses:
            raise _client_error("ExecutionDoesNotExist", "DescribeExecution")
        return {"executionArn": executionArn, "status": self.statuses[executionArn]}


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class HookedDynamoDB:
    """A DynamoDB client that runs ``before(operation, kwargs)`` ahead of each call, to stage races."""

    def __init__(self, client: Any, before: Callable[[str, dict[str, Any]], None]):
        self._client = client
        self._before = before

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self._client, operation)

        def call(**kwargs: Any) -> Any:
            self._before(operation, kwargs)
            return method(**kwargs)

        return call


@pytest.fixture
def dynamodb(aws: Any) -> Iterator[Any]:
    """moto DynamoDB with the semaphore table (pk/sk, TTL on expires_at) and atomic requests."""
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    with serialize_dynamodb():
        yield client


@pytest.fixture
def sfn() -> FakeStepFunctions:
    return FakeStepFunctions()


@pytest.fixture
def make_semaphore(dynamodb: Any, sfn: FakeStepFunctions) -> Callable[..., VideoSemaphore]:
    def make(limit: int = 2, *, dynamodb_client: Any = None) -> VideoSemaphore:
        return VideoSemaphore(TABLE, limit=limit, dynamodb_client=dynamodb_client or dynamodb, sfn_client=sfn)

    return make


@dataclass
class Caller:
    """One operation of one execution, as the AcquireSlot task sees it."""

    holder: str
    execution_arn: str
    token: str

    def acquire(self, semaphore: VideoSemaphore, **kwargs: Any) -> bool:
        return semaphore.acquire(self.holder, self.execution_arn, self.token, **kwargs)


@pytest.fixture
def caller(sfn: FakeStepFunctions) -> Callable[[str], Caller]:
    """Factory: a running execution named ``name`` with operation ``op`` and a fresh token."""

    def make(name: str, op: str = "Labels") -> Caller:
        arn = next((a for a in sfn.statuses if a.endswith(f":{name}")), None) or sfn.start_execution(name)
        return Caller(f"{name}#{op}", arn, sfn.new_token(arn))

    return make


def _holders(snapshot: SemaphoreSnapshot) -> set[str]:
    return set(snapshot.holders)


def _waiters(snapshot: SemaphoreSnapshot) -> list[str]:
    return [waiter.holder for waiter in snapshot.waiters]


# --- acquire --------------------------------------------------------------------------------------
def test_semaphore_acquire_grants_up_to_limit_then_parks(make_semaphore, caller, sfn):
    # GIVEN a semaphore of 2 slots whose item does not exist yet
    semaphore = make_semaphore(limit=2)
    a, b, c = caller("a"), caller("b"), caller("c")

    # WHEN three holders acquire
    results = [a.acquire(semaphore), b.acquire(semaphore), c.acquire(semaphore)]

    # THEN two get a slot and their task succeeds, the third is parked with its token
    assert results == [True, True, False]
    assert sfn.outcome(a.token) == {"acquired": True, "holder": "a#Labels", "via": "acquire"}
    assert sfn.outcome(b.token)["acquired"] is True
    assert sfn.outcome(c.token) is None
    snapshot = semaphore.snapshot()
    assert _holders(snapshot) == {"a#Labels", "b#Labels"}
    assert snapshot.holders["a#Labels"].execution_arn == a.execution_arn
    assert [(w.holder, w.task_token, w.execution_arn) for w in snapshot.waiters] == [
        ("c#Labels", c.token, c.execution_arn)
    ]


def test_semaphore_acquire_is_idempotent(make_semaphore, caller, sfn):
    # GIVEN a holder that already holds the only slot
    semaphore = make_semaphore(limit=1)
    first = caller("a")
    assert first.acquire(semaphore)
    granted_at = semaphore.snapshot().holders["a#Labels"].granted_at

    # WHEN the same holder acquires again with a new token (its fallback timeout fired)
    again = Caller(first.holder, first.execution_arn, sfn.new_token(first.execution_arn))
    result = again.acquire(semaphore)

    # THEN it succeeds again, still counts once and keeps its grant time
    assert result is True
    assert sfn.outcome(again.token)["acquired"] is True
    snapshot = semaphore.snapshot()
    assert _holders(snapshot) == {"a#Labels"}
    assert snapshot.holders["a#Labels"].granted_at == granted_at
    assert _waiters(snapshot) == []


def test_semaphore_acquire_limit_from_call_overrides_instance(make_semaphore, caller):
    # GIVEN a semaphore configured with 1 slot
    semaphore = make_semaphore(limit=1)

    # WHEN two holders acquire with the event's limit of 2
    results = [caller(name).acquire(semaphore, limit=2) for name in ("a", "b")]

    # THEN both hold
    assert results == [True, True]


def test_semaphore_repark_keeps_place_in_queue(make_semaphore, caller, sfn):
    # GIVEN a full semaphore with waiters b then c
    semaphore = make_semaphore(limit=1)
    assert caller("a").acquire(semaphore)
    b, c = caller("b"), caller("c")
    assert not b.acquire(semaphore)
    assert not c.acquire(semaphore)

    # WHEN b's fallback timeout fires and it parks again with a new token
    sfn.wait(b.token, 0)
    b_again = Caller(b.holder, b.execution_arn, sfn.new_token(b.execution_arn))
    assert not b_again.acquire(semaphore)

    # THEN b keeps its place, holding the new token
    waiters = semaphore.snapshot().waiters
    assert [(w.holder, w.task_token) for w in waiters] == [("b#Labels", b_again.token), ("c#Labels", c.token)]


# --- release ----------------------------------------------------------------------------------------
def test_semaphore_release_hands_off_first_in_first_out(make_semaphore, caller, sfn):
    # GIVEN one slot held by a and three waiters parked in the order b, c, d
    semaphore = make_semaphore(limit=1)
    a = caller("a")
    assert a.acquire(semaphore)
    waiters = [caller(name) for name in ("b", "c", "d")]
    for waiter in waiters:
        assert not waiter.acquire(semaphore)

    # WHEN each holder releases in turn
    outcomes = [semaphore.release(holder) for holder in ("a#Labels", "b#Labels", "c#Labels", "d#Labels")]

    # THEN the slot goes to b, c, d in order, each woken through its token, and ends free
    assert [o.handed_off_to for o in outcomes] == ["b#Labels", "c#Labels", "d#Labels", None]
    assert all(o.released for o in outcomes)
    assert [sfn.outcome(w.token) for w in waiters] == [
        {"acquired": True, "holder": f"{name}#Labels", "via": "handoff"} for name in ("b", "c", "d")
    ]
    assert semaphore.snapshot() == SemaphoreSnapshot(holders={}, waiters=[])


def test_semaphore_release_of_non_holder_is_noop(make_semaphore, caller, sfn):
    # GIVEN a holder and a waiter
    semaphore = make_semaphore(limit=1)
    assert caller("a").acquire(semaphore)
    b = caller("b")
    assert not b.acquire(semaphore)

    # WHEN a holder that does not hold releases (twice, as a retried ReleaseSlot would)
    outcomes = [semaphore.release("ghost#Labels"), semaphore.release("ghost#Labels")]

    # THEN nothing changes and nobody is woken
    assert [o.released for o in outcomes] == [False, False]
    assert _holders(semaphore.snapshot()) == {"a#Labels"}
    assert sfn.outcome(b.token) is None


def test_semaphore_release_to_dead_execution_releases_again(make_semaphore, caller, sfn):
    # GIVEN a holder and two waiters, the first of which was aborted while parked
    semaphore = make_semaphore(limit=1)
    assert caller("a").acquire(semaphore)
    b, c = caller("b"), caller("c")
    assert not b.acquire(semaphore)
    assert not c.acquire(semaphore)
    sfn.end_execution(b.execution_arn, "ABORTED")

    # WHEN the holder releases
    outcome = semaphore.release("a#Labels")

    # THEN b's dead token is refused, its slot is released again and goes to c
    assert outcome.handed_off_to == "c#Labels"
    assert (b.token, "TaskTimedOut") in sfn.rejected
    assert sfn.outcome(c.token)["via"] == "handoff"
    assert semaphore.snapshot() == SemaphoreSnapshot(holders=semaphore.snapshot().holders, waiters=[])
    assert _holders(semaphore.snapshot()) == {"c#Labels"}


def test_semaphore_release_to_timed_out_token_of_running_execution_keeps_slot(make_semaphore, caller, sfn):
    # GIVEN a waiter whose AcquireSlot task just timed out (its execution is RUNNING and will re-acquire)
    semaphore = make_semaphore(limit=1)
    assert caller("a").acquire(semaphore)
    b = caller("b")
    assert not b.acquire(semaphore)
    assert sfn.wait(b.token, 0) is False

    # WHEN the holder releases, and b's execution then re-runs AcquireSlot with a new token
    outcome = semaphore.release("a#Labels")
    b_again = Caller(b.holder, b.execution_arn, sfn.new_token(b.execution_arn))
    reacquired = b_again.acquire(semaphore)

    # THEN the slot stays with b, whose idempotent acquire finds it at once
    assert outcome.handed_off_to == "b#Labels"
    assert (b.token, "TaskTimedOut") in sfn.rejected
    assert reacquired is True
    assert sfn.outcome(b_again.token)["via"] == "acquire"
    assert _holders(semaphore.snapshot()) == {"b#Labels"}


def test_semaphore_release_skips_waiter_that_already_holds(make_semaphore, caller, sfn):
    # GIVEN w parked, then won a slot through its own acquire (limit raised) but its waiter item remained,
    # as after a crash between the double-check and the clean-up; v parks behind it
    semaphore = make_semaphore(limit=1)
    assert caller("a").acquire(semaphore)
    w = caller("w")
    assert not w.acquire(semaphore)
    w_again = Caller(w.holder, w.execution_arn, sfn.new_token(w.execution_arn))
    assert w_again.acquire(semaphore, limit=2)
    v = caller("v")
    assert not v.acquire(semaphore, limit=2)
    assert _waiters(semaphore.snapshot()) == ["w#Labels", "v#Labels"]

    # WHEN a releases
    outcome = semaphore.release("a#Labels")

    # THEN the stale waiter item is dropped and the slot goes to v, so a's release is not wasted
    assert outcome.handed_off_to == "v#Labels"
    snapshot = semaphore.snapshot()
    assert _holders(snapshot) == {"w#Labels", "v#Labels"}
    assert _waiters(snapshot) == []


def test_semaphore_release_without_waiter_wakes_holder_parked_meanwhile(dynamodb, make_semaphore, caller, sfn):
    # GIVEN a releaser that has looked for waiters (none) and is about to remove its holder, while e
    # parks and double-checks in that window (the lost wake-up window)
    e = caller("e")
    acquirer = make_semaphore(limit=1)
    staged = {"done": False}

    def park_e_first(operation: str, kwargs: dict[str, Any]) -> None:
        if operation == "update_item" and "REMOVE" in kwargs.get("UpdateExpression", "") and not staged["done"]:
            staged["done"] = True
            assert not e.acquire(acquirer)

    releaser = make_semaphore(limit=1, dynamodb_client=HookedDynamoDB(dynamodb, park_e_first))
    assert caller("a").acquire(releaser)

    # WHEN the releaser removes its holder
    outcome = releaser.release("a#Labels")

    # THEN it wakes e, which would otherwise wait for its fallback timeout
    assert staged["done"]
    assert outcome.released and outcome.handed_off_to is None
    assert sfn.outcome(e.token) == {"acquired": True, "holder": "e#Labels", "via": "wake"}
    assert semaphore_state(acquirer) == ({"e#Labels"}, [])


def semaphore_state(semaphore: VideoSemaphore) -> tuple[set[str], list[str]]:
    snapshot = semaphore.snapshot()
    return _holders(snapshot), _waiters(snapshot)


def test_semaphore_two_releasers_race_for_one_waiter(dynamodb, make_semaphore, caller, sfn):
    # GIVEN two holders and one waiter, and two releasers that both read the waiter before either writes
    barrier = threading.Barrier(2, timeout=5)
    cancellations: list[str] = []

    def meet_before_first_transaction(operation: str, kwargs: dict[str, Any]) -> None:
        if operation == "transact_write_items" and not getattr(local, "met", False):
            local.met = True
            barrier.wait()

    local = threading.local()
    hooked = HookedDynamoDB(dynamodb, meet_before_first_transaction)

    class CountingDynamoDB:
        def __getattr__(self, operation: str) -> Any:
            method = getattr(hooked, operation)

            def call(**kwargs: Any) -> Any:
                try:
                    return method(**kwargs)
                except ClientError as error:
                    cancellations.append(error.response["Error"]["Code"])
                    raise

            return call

    semaphore = make_semaphore(limit=2)
    assert caller("a").acquire(semaphore)
    assert caller("b").acquire(semaphore)
    w = caller("w")
    assert not w.acquire(semaphore)
    outcomes: dict[str, Any] = {}

    def release(holder: str) -> None:
        racer = make_semaphore(limit=2, dynamodb_client=CountingDynamoDB())
        outcomes[holder] = racer.release(holder)

    # WHEN both release at once
    threads = [threading.Thread(target=release, args=(h,)) for h in ("a#Labels", "b#Labels")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # THEN one transaction is cancelled, w is handed the slot exactly once, and the loser just leaves
    assert "TransactionCanceledException" in cancellations
    assert sorted(str(o.handed_off_to) for o in outcomes.values()) == ["None", "w#Labels"]
    assert all(o.released for o in outcomes.values())
    assert [token for _, token, _ in sfn.sent].count(w.token) == 1
    assert semaphore_state(semaphore) == ({"w#Labels"}, [])


def test_semaphore_write_retries_transaction_conflict(dynamodb, make_semaphore, caller, sfn):
    # GIVEN DynamoDB rejecting the first write because a hand-off transaction holds the item
    conflicts = iter([True])

    def conflict_once(operation: str, kwargs: dict[str, Any]) -> None:
        if operation == "update_item" and next(conflicts, False):
            raise _client_error("TransactionConflictException", "UpdateItem")

    semaphore = make_semaphore(limit=1, dynamodb_client=HookedDynamoDB(dynamodb, conflict_once))
    a = caller("a")

    # WHEN a holder acquires
    acquired = a.acquire(semaphore)

    # THEN the write is retried and succeeds
    assert acquired is True
    assert sfn.outcome(a.token)["acquired"] is True


# --- cleanup ----------------------------------------------------------------------------------------
def test_semaphore_release_execution_frees_slots_and_drops_waiters(make_semaphore, caller, sfn):
    # GIVEN execution x holding one slot and parked for another operation, y holding, z parked
    semaphore = make_semaphore(limit=2)
    x_labels, y, x_faces, z = caller("x", "Labels"), caller("y"), caller("x", "Faces"), caller("z")
    assert x_labels.acquire(semaphore) and y.acquire(semaphore)
    assert not x_faces.acquire(semaphore)
    assert not z.acquire(semaphore)
    sfn.end_execution(x_labels.execution_arn, "FAILED")

    # WHEN the status-change cleanup runs for x
    released = semaphore.release_execution(x_labels.execution_arn)

    # THEN x's slot goes to z (not to x's own waiter, which is deleted)
    assert released == ["x#Labels"]
    assert sfn.outcome(z.token)["via"] == "handoff"
    assert sfn.outcome(x_faces.token) is None
    assert semaphore_state(semaphore) == ({"y#Labels", "z#Labels"}, [])


def test_semaphore_release_execution_by_name(make_semaphore, caller):
    # GIVEN execution x holding a slot
    semaphore = make_semaphore(limit=2)
    assert caller("x").acquire(semaphore)

    # WHEN cleanup names the execution instead of its ARN
    released = semaphore.release_execution("x")

    # THEN its holder is released
    assert released == ["x#Labels"]
    assert semaphore_state(semaphore) == (set(), [])


def test_semaphore_reconcile_releases_holders_of_ended_executions(make_semaphore, caller, sfn):
    # GIVEN holders of a succeeded-without-release, a vanished and a running execution, and waiters of a
    # dead and a live execution
    semaphore = make_semaphore(limit=3)
    done, vanished, live = caller("done"), caller("vanished"), caller("live")
    for holder in (done, vanished, live):
        assert holder.acquire(semaphore)
    dead_waiter, live_waiter = caller("dead-waiter"), caller("live-waiter")
    assert not dead_waiter.acquire(semaphore)
    assert not live_waiter.acquire(semaphore)
    sfn.end_execution(done.execution_arn, "SUCCEEDED")
    sfn.end_execution(dead_waiter.execution_arn, "ABORTED")
    del sfn.statuses[vanished.execution_arn]

    # WHEN the reconciler runs with DescribeExecution
    released = semaphore.reconcile()

    # THEN both dead holders are released, the dead waiter dropped and the live waiter woken
    assert sorted(released) == ["done#Labels", "vanished#Labels"]
    assert sfn.outcome(live_waiter.token)["acquired"] is True
    assert sfn.outcome(dead_waiter.token) is None
    assert semaphore_state(semaphore) == ({"live#Labels", "live-waiter#Labels"}, [])


def test_semaphore_reconcile_with_custom_check(make_semaphore, caller):
    # GIVEN two holders
    semaphore = make_semaphore(limit=2)
    a, b = caller("a"), caller("b")
    assert a.acquire(semaphore) and b.acquire(semaphore)

    # WHEN the reconciler is told only b's execution runs
    released = semaphore.reconcile(lambda arn: arn == b.execution_arn)

    # THEN a is released
    assert released == ["a#Labels"]
    assert semaphore_state(semaphore) == ({"b#Labels"}, [])


# --- interleavings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_semaphore_random_interleaving_never_exceeds_limit(make_semaphore, sfn, seed):
    # GIVEN 18 executions of 1-2 operations against 3 slots; some abort while parked or while holding and
    # are cleaned up by the status-change rule, by the reconciler or not at all until the reconciler runs
    rng = random.Random(seed)
    limit, fallback = 3, 0.3
    plans = [
        {"name": f"e{i:02d}", "ops": rng.choice([["Labels"], ["Labels", "Faces"]]), "abort": rng.random()}
        for i in range(18)
    ]
    lock = threading.Lock()
    stats = {"believers": 0, "max_believers": 0, "max_sampled": 0, "unheld_wakes": 0, "timeouts": 0}
    stop = threading.Event()
    cleanups: list[threading.Thread] = []

    def believe(semaphore: VideoSemaphore, holder: str, delta: int) -> None:
        with lock:
            stats["believers"] += delta
            stats["max_believers"] = max(stats["max_believers"], stats["believers"])
        if delta > 0 and holder not in semaphore.snapshot().holders:
            stats["unheld_wakes"] += 1

    def execution(plan: dict[str, Any]) -> None:
        semaphore = make_semaphore(limit=limit)
        arn = sfn.start_execution(plan["name"])
        for index, op in enumerate(plan["ops"]):
            holder = f"{plan['name']}#{op}"
            while True:  # AcquireSlot, re-entered on States.Timeout
                token = sfn.new_token(arn)
                semaphore.acquire(holder, arn, token)
                if plan["abort"] < 0.1 and index == 0 and rng.random() < 0.5:
                    return abort(arn, "parked")
                if sfn.wait(token, fallback):
                    break
                with lock:
                    stats["timeouts"] += 1
            believe(semaphore, holder, +1)
            time.sleep(rng.uniform(0, 0.02))
            believe(semaphore, holder, -1)
            if plan["abort"] < 0.2 and index == 0:
                return abort(arn, "holding")
            semaphore.release(holder)
        sfn.end_execution(arn, "SUCCEEDED")

    def abort(arn: str, where: str) -> None:
        sfn.end_execution(arn, "ABORTED")
        if rng.random() < 0.5:  # the EventBridge rule; otherwise only the reconciler frees it
            cleanup = threading.Thread(target=make_semaphore(limit=limit).release_execution, args=(arn,))
            cleanups.append(cleanup)
            cleanup.start()

    def reconciler() -> None:
        semaphore = make_semaphore(limit=limit)
        while not stop.wait(0.1):
            semaphore.reconcile()

    def sampler() -> None:
        semaphore = make_semaphore(limit=limit)
        while not stop.wait(0.005):
            count = len(semaphore.snapshot().holders)
            with lock:
                stats["max_sampled"] = max(stats["max_sampled"], count)

    background = [threading.Thread(target=reconciler), threading.Thread(target=sampler)]
    workers = [threading.Thread(target=execution, args=(plan,)) for plan in plans]

    # WHEN they all run at once
    started = time.monotonic()
    for thread in background + workers:
        thread.start()
    for thread in workers:
        thread.join(30)
    stuck = [thread for thread in workers if thread.is_alive()]
    for thread in cleanups:
        thread.join(10)
    stop.set()
    for thread in background:
        thread.join(10)
    make_semaphore(limit=limit).reconcile()

    # THEN no more than 3 executions ever believed they held a slot, the table agreed, every woken
    # execution held its slot, nobody was stuck, and the semaphore ends empty
    print(f"seed={seed} elapsed={time.monotonic() - started:.2f}s {stats} wakes={len(sfn.sent)}")
    assert not stuck
    assert stats["max_believers"] <= limit
    assert stats["max_sampled"] <= limit
    assert stats["unheld_wakes"] == 0
    assert semaphore_state(make_semaphore(limit=limit)) == (set(), [])
