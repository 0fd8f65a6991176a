"""Errors of the slot dispatcher, each naming the condition and keeping its context."""

from __future__ import annotations


class SlotError(Exception):
    """Base class of the slot dispatcher's errors."""


class FenceError(SlotError):
    """The header's version moved since it was read: another writer committed first; reload and retry."""

    def __init__(self, expected: int) -> None:
        super().__init__(f"slot header is no longer at version {expected}")
        self.expected = expected


class TransientWorldError(SlotError):
    """A call to AWS (Start*, Get*, a heartbeat) failed in a way worth retrying later; nothing changed."""

    def __init__(self, call: str, reason: str) -> None:
        super().__init__(f"{call} failed, retry later: {reason}")
        self.call = call
        self.reason = reason


class MessageError(SlotError, ValueError):
    """A message body is not one of the five slot messages; it is quarantined, never retried."""
