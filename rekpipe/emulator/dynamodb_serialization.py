"""Atomic moto DynamoDB requests while in-process handlers run on several threads.

DynamoDB applies a conditional write atomically; moto 5.2.5 applies a request as several unlocked steps,
so concurrent conditional writes from handler threads can both succeed (measured: 6 of 30 threads won 3
slots). While :func:`serialize_dynamodb` is open each moto DynamoDB request runs under one re-entrant lock;
the Lambda adapter opens it while installed, and runs a handler started by a DynamoDB stream outside it
(:func:`outside_dynamodb_lock`), as streams are asynchronous in AWS.

Upstream: docs/upstream/dynamodb-conditional-writes-not-thread-safe.md (still in moto at 0af643a, 2026-08-22).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from moto.dynamodb.responses import DynamoHandler

if TYPE_CHECKING:
    from collections.abc import Iterator


class _OwnedLock:
    """Re-entrant lock that its owner can set aside completely and take back (around a stream handler)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        self._lock.acquire()
        self._owner, self._depth = me, 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()

    def suspend(self) -> int:
        """Release fully if held by this thread; return the depth to :meth:`resume` with."""
        if self._owner != threading.get_ident():
            return 0
        depth, self._depth, self._owner = self._depth, 0, None
        self._lock.release()
        return depth

    def resume(self, depth: int) -> None:
        if depth:
            self._lock.acquire()
            self._owner, self._depth = threading.get_ident(), depth


_dynamodb_lock = _OwnedLock()
_dynamodb_patch_guard = threading.Lock()
_dynamodb_patch_users = 0
_original_dynamodb_call_action: Any = None


@contextmanager
def serialize_dynamodb() -> Iterator[None]:
    """Run each moto DynamoDB request atomically while the context is open (re-entrant, nestable).

    DynamoDB applies a conditional write atomically; moto 5.2.5 does not when requests come from several
    threads, which in-process handlers and Step Functions executions do.

    Upstream: docs/upstream/dynamodb-conditional-writes-not-thread-safe.md (still in moto at 0af643a, 2026-08-22).
    """
    global _dynamodb_patch_users, _original_dynamodb_call_action
    with _dynamodb_patch_guard:
        if _dynamodb_patch_users == 0:
            original = DynamoHandler.__dict__["call_action"]
            _original_dynamodb_call_action = original

            def call_action(self: DynamoHandler) -> Any:
                _dynamodb_lock.acquire()
                try:
                    return original(self)
                finally:
                    _dynamodb_lock.release()

            DynamoHandler.call_action = call_action
        _dynamodb_patch_users += 1
    try:
        yield
    finally:
        with _dynamodb_patch_guard:
            _dynamodb_patch_users -= 1
            if _dynamodb_patch_users == 0:
                DynamoHandler.call_action = _original_dynamodb_call_action
                _original_dynamodb_call_action = None


@contextmanager
def outside_dynamodb_lock() -> Iterator[None]:
    """Set this thread's hold of the DynamoDB lock aside for the block (a handler run by an invocation)."""
    depth = _dynamodb_lock.suspend()
    try:
        yield
    finally:
        _dynamodb_lock.resume(depth)
