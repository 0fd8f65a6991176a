"""Errors the pipeline raises on purpose, each naming the condition and keeping its context."""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class SettingsError(PipelineError, ValueError):
    """A setting has a value the pipeline cannot run with."""

    def __init__(self, setting: str, problem: str, value: Any = ...) -> None:
        self.setting = setting
        self.problem = problem
        self.value = value
        shown = "" if value is ... else f" (got {value!r})"
        super().__init__(f"setting {setting!r} {problem}{shown}")


class TaskNotFoundError(PipelineError):
    """A task id has no item in the task table."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no task {task_id!r} in the task table")


class RetryableAnalysisError(PipelineError):
    """Analysis stopped for a reason that a later attempt can get past (throttling, time running out)."""

    def __init__(self, task_id: str, reason: str) -> None:
        self.task_id = task_id
        self.reason = reason
        super().__init__(f"task {task_id}: {reason}; left for a later attempt")


class ResultPendingError(RetryableAnalysisError):
    """Another task is analysing the same bytes now: wait for its result instead of paying twice."""

    def __init__(self, task_id: str, leader_task_id: str | None, wait_seconds: float) -> None:
        self.leader_task_id = leader_task_id
        self.wait_seconds = wait_seconds
        super().__init__(task_id, f"waiting for task {leader_task_id} analysing the same bytes")


class RekognitionThrottledError(PipelineError):
    """Get* stayed throttled (ThrottlingException, ProvisionedThroughputExceededException) through the
    function's own retries; the state machine retries it by this name with a longer backoff."""

    def __init__(self, api: str, job_id: str, attempts: int, code: str, message: str) -> None:
        self.api, self.job_id, self.attempts, self.code = api, job_id, attempts, code
        super().__init__(f"{api} for job {job_id} still throttled after {attempts} attempts "
                         f"({code}: {message}); the job succeeded, its results are read on the next retry")


class RekognitionUnavailableError(PipelineError):
    """Get* kept failing with InternalServerError through the function's own retries; retried by this name."""

    def __init__(self, api: str, job_id: str, attempts: int, code: str, message: str) -> None:
        self.api, self.job_id, self.attempts, self.code = api, job_id, attempts, code
        super().__init__(f"{api} for job {job_id} kept failing after {attempts} attempts ({code}: {message})")


class ResultsUnreadableError(PipelineError):
    """Get* refused a finished job's results for a reason retrying cannot fix (expired, bad token, denied)."""

    def __init__(self, api: str, job_id: str, code: str, message: str) -> None:
        self.api, self.job_id, self.code = api, job_id, code
        super().__init__(f"the results of job {job_id} cannot be read: {api} answered {code}: {message}")
