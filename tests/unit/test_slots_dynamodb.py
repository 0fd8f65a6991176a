"""The DynamoDB slot store on moto: the same rules and model as the in-memory tests, with the fence
enforced by DynamoDB's conditional transaction."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe_shared.slots import Changes, FenceError, SetLimit, WaiterItem
from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore
from rekpipe_shared.slots.state import RUNNING, FinishedItem, HolderItem
from tests.support.slot_model import SlotModel
from tests.unit.test_slots_schedules import _random_schedule

if TYPE_CHECKING:
    from collections.abc import Callable

TABLE = "slot-table"


@pytest.fixture
def new_store(aws: Any) -> Callable[..., DynamoDBSlotStore]:
    """A factory of stores on one moto table with the slot table's key schema (pk, sk strings)."""
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )

    def make(limit: int = 1, pool: str = "video-jobs") -> DynamoDBSlotStore:
        return DynamoDBSlotStore(TABLE, default_limit=limit, pool=pool, boto3_client=client)

    return make


def test_dynamodb_store_round_trips_every_item_kind(new_store: Callable[..., DynamoDBSlotStore]) -> None:
    # GIVEN a store that was never written
    store = new_store(limit=3)
    snap = store.load()
    assert (snap.header.limit, snap.header.version) == (3, 0)
    # WHEN a waiter, a tombstone and a new limit are committed
    waiter = WaiterItem("A#labels", "tok", "exec-A", {"operation": "labels"}, 0, 5.0)
    changes = Changes(header=replace(snap.header, limit=4, next_seq=1), waiters={"A#labels": waiter},
                      tombstones={"exec-B": 99.0})
    store.commit(snap, changes)
    # THEN they read back, at version 1, with counts in the header for `rekpipe status`
    again = store.load()
    assert again.header.version == 1 and again.header.limit == 4
    assert again.waiters == {"A#labels": waiter}
    assert again.tombstones.get("exec-B") == 99.0 and "exec-C" not in again.tombstones
    assert store.header() == {"limit": 4, "holders": 0, "waiters": 1, "version": 1, "quota_limit": 0}


def test_dynamodb_store_fence_refuses_a_stale_writer(new_store: Callable[..., DynamoDBSlotStore]) -> None:
    # GIVEN two writers that read the same version
    first, second = new_store(), new_store()
    base = first.load()
    first.commit(base, Changes(header=replace(base.header, limit=2)))
    # WHEN the second commits from its stale read
    # THEN DynamoDB cancels the transaction and nothing of it is written
    with pytest.raises(FenceError):
        second.commit(base, Changes(header=replace(base.header, limit=7), tombstones={"exec-X": 1.0}))
    assert first.load().header.limit == 2
    assert "exec-X" not in first.load().tombstones


def test_dynamodb_store_load_reads_only_the_header_holders_and_waiters(
        new_store: Callable[..., DynamoDBSlotStore]) -> None:
    """A backlog leaves thousands of finished items and tombstones (kept days): a message must not pay for them."""
    # GIVEN a store with a holder, a waiter, 150 finished holders, 150 tombstones and a quarantined message
    store = new_store(limit=2)
    snap = store.load()
    for batch in range(3):  # TransactWriteItems takes 100 items at most
        finished = {f"F{batch}-{i}#labels": FinishedItem(f"F{batch}-{i}#labels", "job", "SUCCEEDED", "", "", 1e12)
                    for i in range(49)}
        tombstones = {f"exec-{batch}-{i}": 1e12 for i in range(49)}
        snap = store.commit(snap, Changes(header=snap.header, finished=finished, tombstones=tombstones))
    holder = HolderItem("H#labels", "tok-h", "exec-H", {"operation": "labels"}, RUNNING, "job-h", 1.0, 1.0)
    waiter = WaiterItem("W#labels", "tok-w", "exec-W", {"operation": "labels"}, 0, 1.0)
    snap = store.commit(snap, Changes(header=snap.header, holders={holder.holder: holder},
                                      waiters={waiter.holder: waiter}))
    store.quarantine("m-1", "{}", "ValueError: bad")
    calls: list[tuple[str, int]] = []

    def count(model: Any, **_: Any) -> None:
        calls.append((model.name, 0))

    store.client.meta.events.register("before-call.dynamodb", count)
    # WHEN the dispatcher loads the state and looks up one finished holder and one tombstone
    again = store.load()
    loaded = [name for name, _ in calls]
    response_items = store.client.query(
        TableName=TABLE, KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
        ExpressionAttributeValues={":pk": {"S": store.pk}, ":a": {"S": "HEADER"}, ":b": {"S": "WAITER#\U0010ffff"}},
    )["Count"]
    # THEN one Query read the header, the holder and the waiter (and the quarantined message, filtered out) ...
    assert loaded == ["Query"] and response_items == 4
    assert set(again.holders) == {"H#labels"} and set(again.waiters) == {"W#labels"}
    assert again.header.version == snap.header.version
    # ... and each lookup is one GetItem, remembered for the rest of the message
    calls.clear()
    assert again.finished["F1-7#labels"].job_id == "job" and again.finished.get("F1-7#labels") is not None
    assert "exec-2-3" in again.tombstones and "exec-9-9" not in again.tombstones
    assert [name for name, _ in calls] == ["GetItem", "GetItem", "GetItem"]
    # ... and nothing can list them, so no rule can come to cost O(history)
    with pytest.raises(TypeError):
        len(again.finished)
    with pytest.raises(TypeError):
        list(again.tombstones)


def test_dynamodb_store_quarantine_keeps_the_message(new_store: Callable[..., DynamoDBSlotStore]) -> None:
    # GIVEN a message that broke a rule
    store = new_store()
    # WHEN it is quarantined
    store.quarantine("m-1", '{"kind": "nope"}', "MessageError: unknown kind")
    # THEN it is kept for a human and changes no slot
    assert store.quarantined() == [{"id": "m-1", "body": '{"kind": "nope"}', "error": "MessageError: unknown kind"}]
    assert store.load().header.version == 0


def test_dynamodb_store_runs_the_rules_through_d1a(new_store: Callable[..., DynamoDBSlotStore]) -> None:
    # GIVEN the D1a sequence on the DynamoDB store
    model = SlotModel(limit=1, store=new_store())
    model.want("X#labels")
    labels = model.want("E#labels", "exec-E")
    while model.deliver():
        pass
    model.kill_token(labels)
    model.want("E#moderation", "exec-E")
    model.finish_job("X#labels")
    # WHEN it settles
    model.settle()
    # THEN the dead iteration got nothing and the live one ran
    assert "E#labels" not in model.jobs
    assert model.result_of("E#moderation")["status"] == "SUCCEEDED"


@pytest.mark.parametrize("seed", range(25))
def test_dynamodb_store_random_schedules_keep_safety_and_liveness(
    new_store: Callable[..., DynamoDBSlotStore], seed: int
) -> None:
    # GIVEN a seeded random schedule with faults, on its own partition of the table
    rng = random.Random(seed)
    names = [f"{rng.choice('EFG')}{i}#op" for i in range(rng.randint(2, 5))]
    model = SlotModel(limit=rng.randint(1, 3), store=new_store(limit=0, pool=f"p{seed}"))
    model.queue.append(SetLimit(model.limit))
    # WHEN it runs and settles
    _random_schedule(rng, model, names)
    model.settle()
    # THEN no job runs without its slot (checked at each delivery) and every live operation heard its end
    assert not any(job.running for job in model.jobs.values())
