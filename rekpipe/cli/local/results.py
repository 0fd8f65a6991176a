"""What ``rekpipe local run`` did, as plain data: one outcome per uploaded file, and the run's record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from rekpipe.simulator import VideoJob


@dataclass
class ObjectOutcome:
    """One uploaded file and what the pipeline did with it."""

    key: str
    size: int
    media_type: str | None
    task_id: str | None
    status: str
    operations: tuple[str, ...] = ()
    result: str = ""
    task: dict[str, Any] | None = None

    @property
    def analysed(self) -> bool:
        """Ingest writes a task for it (a supported image or video)."""
        return self.task_id is not None


@dataclass
class LocalRunResult:
    """What ``rekpipe local run`` did (returned by :func:`rekpipe.cli.local.session.run_local`, for tests and
    scripts)."""

    objects: list[ObjectOutcome]
    counts: dict[str, int]
    out: Path
    log_path: Path
    copied: int = 0
    lost: list[ObjectOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    simulator_calls: dict[str, Any] = field(default_factory=dict)
    video_jobs: list[VideoJob] = field(default_factory=list)
    lost_notices: list[str] = field(default_factory=list)
    peak_running_jobs: int = 0
    slot_holders: dict[str, Any] = field(default_factory=dict)
    content_bucket: str = ""
    output_bucket: str = ""
    access_refusals: list[str] = field(default_factory=list)
    """Each distinct IAM refusal of the run (caller, action, resource): a grant the stack lacks, or a fault."""
    report: Path | None = None
    """The HTML report's ``index.html``, when one was written."""

    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for outcome in self.objects:
            totals[outcome.status] = totals.get(outcome.status, 0) + 1
        return totals


__all__ = ["LocalRunResult", "ObjectOutcome"]
