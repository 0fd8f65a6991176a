"""One factory for every function: same runtime, layer, tracing, logging and environment.

Every function gets the whole common environment (only ``POWERTOOLS_SERVICE_NAME`` differs), so
the embedded runtime can run all handlers in one process; each function's *permissions* stay
narrow and are granted by the construct that owns the function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from rekpipe_shared.schema import LOG_RETENTION_DAYS, SERVICE_NAME_ENV
from stack.nag import acknowledge, wildcard_resource
from stack.paths import ASSET_EXCLUDES, function_dir

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_cdk import aws_sqs as sqs

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.X86_64
"""Must match the platform the shared layer's wheels are built for."""
HANDLER = "app.handler"

XRAY_REASON = (
    "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support "
    "resource-level permissions, so AWS requires Resource '*' for them (added by the Lambda L2)."
)


class PipelineFunction(Construct):
    """One pipeline function with its own role and its own encrypted, retention-limited log group.

    The role starts with nothing but writing to its log group and X-Ray; the construct that owns
    the function grants the rest. No managed policies, no reserved concurrency.

    Attributes
    ----------
    name: str
        The folder under ``lambdas/`` and the Powertools service name.
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        layer: lambda_.ILayerVersion,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        log_key: kms.IKey,
        timeout: cdk.Duration,
        memory_size: int,
        description: str,
        dead_letter_queue: sqs.IQueue | None = None,
        retry_attempts: int | None = None,
        max_event_age: cdk.Duration | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"Execution role of the {name} function")
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention, encryption_key=log_key,
                                       removal_policy=cdk.RemovalPolicy.RETAIN)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(function_dir(name)), exclude=list(ASSET_EXCLUDES)),
            layers=[layer],
            role=self.role,
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**environment, SERVICE_NAME_ENV: name},
            description=description,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )
        self.log_group.grant_write(self.role)
        acknowledge(self.role, wildcard_resource("*"), XRAY_REASON)

    def add_to_policy(self, *statements: iam.PolicyStatement) -> None:
        """Add statements to the function's own role."""
        for statement in statements:
            self.role.add_to_principal_policy(statement)


class FunctionFactory(Construct):
    """Builds every :class:`PipelineFunction` and keeps their common environment identical.

    Parameters
    ----------
    layer: lambda_.ILayerVersion
        The shared layer.
    log_retention_days: int
        CloudWatch Logs retention of every function (and of the state machine's log group).
    environment: Mapping[str, str]
        The common environment known up front; :meth:`set_environment` adds the rest (resource
        names created later) to every function, past and future.

    Attributes
    ----------
    log_key: kms.Key
        Customer-managed key of every log group of the stack (CloudWatch Logs may use it).
    log_retention: logs.RetentionDays
    functions: dict[str, PipelineFunction]
        By name, in creation order.
    """

    def __init__(self, scope: Construct, id_: str, *, layer: lambda_.ILayerVersion, log_retention_days: int,
                 environment: Mapping[str, str]) -> None:
        super().__init__(scope, id_)
        self.layer = layer
        self.log_retention = retention(log_retention_days)
        self.environment: dict[str, str] = dict(environment)
        self.functions: dict[str, PipelineFunction] = {}
        stack = cdk.Stack.of(self)
        self.log_key = kms.Key(self, "LogKey", enable_key_rotation=True,
                               description="Encrypts the pipeline's CloudWatch Logs log groups")
        self.log_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs", resource="log-group", resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    def create(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        timeout: cdk.Duration,
        description: str,
        memory_size: int = 256,
        dead_letter_queue: sqs.IQueue | None = None,
        retry_attempts: int | None = None,
        max_event_age: cdk.Duration | None = None,
    ) -> PipelineFunction:
        """Create the function whose code is ``lambdas/<name>/app.py``."""
        if name in self.functions:
            raise ValueError(f"function {name!r} is defined twice")
        if not (function_dir(name) / "app.py").is_file():
            raise FileNotFoundError(f"{function_dir(name) / 'app.py'} is missing; every function needs a handler")
        function = PipelineFunction(
            scope, id_, name=name, layer=self.layer, environment=self.environment,
            log_retention=self.log_retention, log_key=self.log_key, timeout=timeout, memory_size=memory_size,
            description=description, dead_letter_queue=dead_letter_queue, retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )
        self.functions[name] = function
        return function

    def set_environment(self, name: str, value: str) -> None:
        """Give every function (created so far and later) the same value for ``name``."""
        if name == SERVICE_NAME_ENV:
            raise ValueError(f"{SERVICE_NAME_ENV} is per function")
        self.environment[name] = value
        for function in self.functions.values():
            function.function.add_environment(name, value)


_RETENTION_BY_DAYS = dict(zip(LOG_RETENTION_DAYS, (
    logs.RetentionDays.ONE_DAY, logs.RetentionDays.THREE_DAYS, logs.RetentionDays.FIVE_DAYS,
    logs.RetentionDays.ONE_WEEK, logs.RetentionDays.TWO_WEEKS, logs.RetentionDays.ONE_MONTH,
    logs.RetentionDays.TWO_MONTHS, logs.RetentionDays.THREE_MONTHS, logs.RetentionDays.FOUR_MONTHS,
    logs.RetentionDays.FIVE_MONTHS, logs.RetentionDays.SIX_MONTHS, logs.RetentionDays.ONE_YEAR,
    logs.RetentionDays.THIRTEEN_MONTHS, logs.RetentionDays.EIGHTEEN_MONTHS,
    logs.RetentionDays.TWO_YEARS, logs.RetentionDays.THREE_YEARS, logs.RetentionDays.FIVE_YEARS,
    logs.RetentionDays.SIX_YEARS, logs.RetentionDays.SEVEN_YEARS, logs.RetentionDays.EIGHT_YEARS,
    logs.RetentionDays.NINE_YEARS, logs.RetentionDays.TEN_YEARS,
), strict=True))
"""jsii enums carry names, not day counts: the members in the order of ``LOG_RETENTION_DAYS``."""


def retention(days: int) -> logs.RetentionDays:
    """The ``RetentionDays`` member for a number of days (the settings allow only valid ones)."""
    try:
        return _RETENTION_BY_DAYS[days]
    except KeyError:
        raise ValueError(f"CloudWatch Logs has no {days}-day retention") from None
