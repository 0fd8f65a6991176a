"""The embedded runtime: AWS services from moto, with our Lambda handlers run in-process."""

from __future__ import annotations

from rekpipe.emulator.batch_operations import (
    BatchJobSpec,
    BatchJobSummary,
    BatchOperationsError,
    BatchOperationsRunner,
    BatchOperationsService,
    ManifestError,
    ManifestLocation,
    ReportSpec,
)
from rekpipe.emulator.lambda_adapter import (
    AdapterAlreadyInstalledError,
    EnvironmentConflictError,
    HandlerNotFoundError,
    InProcessLambdas,
    Invocation,
    LambdaAdapterError,
    LambdaContext,
    MotoIncompatibleError,
    ServiceNameResolver,
    check_moto_compatibility,
    serialize_dynamodb,
)

__all__ = [
    "AdapterAlreadyInstalledError",
    "BatchJobSpec",
    "BatchJobSummary",
    "BatchOperationsError",
    "BatchOperationsRunner",
    "BatchOperationsService",
    "EnvironmentConflictError",
    "HandlerNotFoundError",
    "InProcessLambdas",
    "Invocation",
    "LambdaAdapterError",
    "LambdaContext",
    "ManifestError",
    "ManifestLocation",
    "MotoIncompatibleError",
    "ReportSpec",
    "ServiceNameResolver",
    "check_moto_compatibility",
    "serialize_dynamodb",
]
