"""Video slots owned by a single writer: the rules, their state, their messages and their stores.

A slot is one running Rekognition job of ours. Every decision about slots is a message on one SQS FIFO
message group, applied by ``slot_dispatcher`` with :class:`SlotRules`; see statemachines/README.md.
"""

from __future__ import annotations

from rekpipe_shared.slots.exceptions import FenceError, MessageError, SlotError, TransientWorldError
from rekpipe_shared.slots.messages import (
    Cancel,
    Done,
    Message,
    SetLimit,
    Tick,
    Want,
    decode,
    encode,
    superseded_ticks,
)
from rekpipe_shared.slots.rules import START_FAILED, SlotRules, SlotSettings, finished_output
from rekpipe_shared.slots.state import (
    RUNNING,
    STARTING,
    Changes,
    FinishedItem,
    Header,
    HolderItem,
    Snapshot,
    WaiterItem,
)
from rekpipe_shared.slots.store import MemorySlotStore, SlotStore
from rekpipe_shared.slots.world import JobEnd, SlotWorld, StartResult

__all__ = [
    "RUNNING",
    "STARTING",
    "START_FAILED",
    "Cancel",
    "Changes",
    "Done",
    "FenceError",
    "FinishedItem",
    "Header",
    "HolderItem",
    "JobEnd",
    "MemorySlotStore",
    "Message",
    "MessageError",
    "SetLimit",
    "SlotError",
    "SlotRules",
    "SlotSettings",
    "SlotStore",
    "SlotWorld",
    "Snapshot",
    "StartResult",
    "Tick",
    "TransientWorldError",
    "WaiterItem",
    "Want",
    "decode",
    "encode",
    "finished_output",
    "superseded_ticks",
]
