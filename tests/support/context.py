"""A Lambda context for handlers called directly: the emulator's own class, with a controllable deadline."""

from __future__ import annotations

from rekpipe.emulator.lambda_context import LambdaContext


def FakeLambdaContext(*, timeout_seconds: float = 60.0, function_name: str = "test-function") -> LambdaContext:
    """A new invocation's context; ``timeout_seconds`` drives the remaining time."""
    return LambdaContext.for_function(function_name, timeout_seconds=timeout_seconds, memory_limit_in_mb=512)
