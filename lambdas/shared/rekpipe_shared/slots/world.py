"""What the slot rules ask of AWS: the calls the single writer makes, behind one interface so the rules
run unchanged over the real services (``aws_world``) and over a model in the unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rekpipe_shared.slots.state import HolderItem


@dataclass(frozen=True)
class StartResult:
    """What Start* said: a JobId, LimitExceededException (no job), or a permanent refusal (no job)."""

    job_id: str = ""
    limit_exceeded: bool = False
    error: str = ""
    cause: str = ""


@dataclass(frozen=True)
class JobEnd:
    """A job known to have ended, from Get*."""

    job_id: str
    status: str
    message: str = ""


class SlotWorld(Protocol):
    """The calls of the dispatcher. Each raises ``TransientWorldError`` when it is worth retrying later."""

    def heartbeat(self, token: str) -> bool:
        """SendTaskHeartbeat: True if the task still waits, False if its token is closed."""

    def start_job(self, holder: str, request: dict[str, Any]) -> StartResult:
        """Start* with ``ClientRequestToken = holder`` and ``JobTag = holder``: a replay returns the same JobId."""

    def job_status(self, holder: HolderItem) -> JobEnd | None:
        """Get* of the holder's job: None while it runs."""

    def resume(self, token: str, output: dict[str, Any]) -> None:
        """SendTaskSuccess; a closed token is not an error (the result is already recorded)."""

    def fail(self, token: str, error: str, cause: str) -> None:
        """SendTaskFailure; a closed token is not an error."""

    def job_quota(self) -> int | None:
        """The concurrent stored-video job quota in use (the account's, capped by the settings), from a cached
        reading; None when unknown (the stored limit then stays as it is)."""

    def admit(self, count: int, *, cap: int | None = None) -> int:
        """Start up to ``count`` executions from the QUEUED backlog, and never more than ``cap`` open at once;
        returns how many started."""
