"""The embedded runtime: AWS services from moto, with our Lambda handlers run in-process."""

from __future__ import annotations

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
    "EnvironmentConflictError",
    "HandlerNotFoundError",
    "InProcessLambdas",
    "Invocation",
    "LambdaAdapterError",
    "LambdaContext",
    "MotoIncompatibleError",
    "ServiceNameResolver",
    "check_moto_compatibility",
    "serialize_dynamodb",
]
