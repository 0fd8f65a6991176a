"""Errors the benchmark raises."""

from __future__ import annotations


class BenchError(Exception):
    """Base class of the benchmark's errors."""


class PipelineStalledError(BenchError):
    """The pipeline did not bring every object to a terminal status in the time allowed."""

    def __init__(self, run: str, counts: dict[str, int], timeout: float) -> None:
        super().__init__(f"{run or 'run'}: not every task terminal after {timeout:.0f} s; task counts {counts}")
        self.run = run
        self.counts = counts
        self.timeout = timeout
