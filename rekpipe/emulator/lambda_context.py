"""The context object the Lambda Python runtime passes to a handler, for handlers run in-process.

One class for every in-process run: the Lambda adapter builds one per invocation from the moto function
(``rekpipe.emulator.lambda_adapter``), and tests that call a handler directly build one with
:meth:`LambdaContext.for_function`. ``get_remaining_time_in_millis()`` counts down from the timeout, from
the moment the context is made, as the runtime's does from the invocation's start.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


@dataclass
class LambdaContext:
    """The runtime's context object (the attributes and the method Powertools and our handlers read)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: float
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    @classmethod
    def for_function(
        cls, function_name: str, *, timeout_seconds: float, memory_limit_in_mb: int = 128,
        version: str = "$LATEST", function_arn: str | None = None, request_id: str | None = None,
    ) -> LambdaContext:
        """A new invocation's context of one function: a fresh request id and log stream, the full timeout left."""
        arn = function_arn or f"arn:aws:lambda:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:function:{function_name}"
        return cls(
            function_name=function_name,
            function_version=version,
            invoked_function_arn=arn,
            memory_limit_in_mb=memory_limit_in_mb,
            aws_request_id=request_id or str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{function_name}",
            log_stream_name=f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}",
            timeout_seconds=timeout_seconds,
        )
