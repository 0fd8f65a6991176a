"""The emulated Batch Operations' errors: a job's own failures, and S3 Control's API errors.

The API errors are moto ``ServiceException`` subclasses, so that moto answers them with S3 Control's
error code and botocore raises the ``ClientError`` that AWS would give.
"""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class BatchOperationsError(Exception):
    """Base class of the emulated Batch Operations' errors."""


class ManifestError(BatchOperationsError):
    """The manifest cannot be read or has the wrong shape (the job fails, as in AWS)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


class JobNotFoundError(ServiceException):
    """DescribeJob or UpdateJobStatus named a job that does not exist."""

    code = "NotFoundException"


class BadRequestError(ServiceException):
    """CreateJob asked for what the emulator cannot run, or S3 Batch Operations is not installed."""

    code = "BadRequestException"


class JobStatusError(ServiceException):
    """UpdateJobStatus asked for a move the job's status does not allow."""

    code = "JobStatusException"
