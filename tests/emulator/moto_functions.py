"""Create Lambda functions in moto for the in-process adapter: an IAM role, a stub zip, the environment."""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING, Any

import boto3

from rekpipe_shared.schema import SERVICE_NAME_ENV

if TYPE_CHECKING:
    from collections.abc import Mapping

ROLE_NAME = "in-process-lambda-role"
TEST_HANDLERS = "tests.emulator.handlers"
"""Package of test-only handler folders, resolved like ``lambdas/<name>/app.py``."""
_TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)


def lambda_role_arn() -> str:
    """The execution role every test function uses, created on first use (moto checks it exists)."""
    iam = boto3.client("iam")
    try:
        return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=_TRUST_POLICY)["Role"]["Arn"]


def stub_zip() -> bytes:
    """A deployment package; its code never runs, the adapter dispatches to our modules instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    raise RuntimeError('not run in-process')\n")
    return buffer.getvalue()


def create_function(
    name: str,
    *,
    service: str | None = None,
    environment: Mapping[str, str] | None = None,
    timeout: int = 30,
    memory_size: int = 256,
) -> dict[str, Any]:
    """Create a moto function whose ``POWERTOOLS_SERVICE_NAME`` is ``service`` (defaults to ``name``).

    Returns
    -------
    dict
        The CreateFunction response (``FunctionArn``, ``FunctionName``, ...).
    """
    variables = {SERVICE_NAME_ENV: service or name.replace("-", "_"), **(environment or {})}
    return boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.14",
        Role=lambda_role_arn(),
        Handler="app.handler",
        Code={"ZipFile": stub_zip()},
        Timeout=timeout,
        MemorySize=memory_size,
        Environment={"Variables": variables},
    )
