"""Client settings and error helpers shared by every function.

Retries are botocore's ``standard`` mode: capped exponential backoff with full jitter for
throttling and transient 5xx, which is exactly what Rekognition's TPS quotas call for.
"""

from __future__ import annotations

from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_appid="rekpipe")


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, or the exception's class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def error_message(error: BaseException) -> str:
    """A person-readable message: the service's text when there is one."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message") or error)
    return str(error)


def retry_attempts(response: dict) -> int:
    """How many times botocore retried a call that finally succeeded (throttles, mostly)."""
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
