"""One factory for every function: same runtime, layer, tracing and logging, and only the environment it reads.

Each function gets the variables its construct says its handler reads (``environment=`` at creation), with the
stack's value of each, plus what Powertools reads in every function; ``tests/infra`` checks each list against the
names the handler's code refers to. A variable has one value in every function that has it, so the embedded
runtime can run all handlers in one process, and it hides from each invocation the variables its function lacks
(``rekpipe.emulator.invocation_environment``). Permissions stay narrow the same way: the construct that owns the
function grants them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IValidation

from rekpipe_shared.schema import LOG_RETENTION_DAYS, SERVICE_NAME_ENV
from stack.nag import acknowledge, wildcard_resource
from stack.paths import ASSET_EXCLUDES, function_dir

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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
        Values known up front; :meth:`set_environment` adds the rest (resource names created later). A function
        gets the ones it reads.
    every_function: Mapping[str, str]
        Variables every function has (Powertools' log level and metrics namespace, read by every handler).

    Attributes
    ----------
    log_key: kms.Key
        Customer-managed key of every log group of the stack (CloudWatch Logs may use it).
    log_retention: logs.RetentionDays
    functions: dict[str, PipelineFunction]
        By name, in creation order.
    """

    def __init__(self, scope: Construct, id_: str, *, layer: lambda_.ILayerVersion, log_retention_days: int,
                 environment: Mapping[str, str], every_function: Mapping[str, str]) -> None:
        super().__init__(scope, id_)
        self.layer = layer
        self.log_retention = retention(log_retention_days)
        self.environment: dict[str, str] = dict(environment)
        self.every_function: dict[str, str] = dict(every_function)
        self.reads: dict[str, tuple[str, ...]] = {}
        self.node.add_validation(_EveryReadHasAValue(self))
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
        environment: Sequence[str],
    ) -> PipelineFunction:
        """Create the function whose code is ``lambdas/<name>/app.py``, with the variables ``environment`` names
        (the ones its handler reads)."""
        if name in self.functions:
            raise ValueError(f"function {name!r} is defined twice")
        if SERVICE_NAME_ENV in environment or set(environment) & set(self.every_function):
            raise ValueError(f"{name}: {SERVICE_NAME_ENV} and the every-function variables are set by the factory")
        if not (function_dir(name) / "app.py").is_file():
            raise FileNotFoundError(f"{function_dir(name) / 'app.py'} is missing; every function needs a handler")
        self.reads[name] = tuple(dict.fromkeys(environment))
        values = {**self.every_function, **{k: self.environment[k] for k in self.reads[name] if k in self.environment}}
        function = PipelineFunction(
            scope, id_, name=name, layer=self.layer, environment=values,
            log_retention=self.log_retention, log_key=self.log_key, timeout=timeout, memory_size=memory_size,
            description=description, dead_letter_queue=dead_letter_queue, retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )
        self.functions[name] = function
        return function

    def set_environment(self, name: str, value: str) -> None:
        """Set ``name`` to ``value`` in every function that reads it (created so far and later)."""
        if name == SERVICE_NAME_ENV:
            raise ValueError(f"{SERVICE_NAME_ENV} is per function")
        self.environment[name] = value
        for function_name, function in self.functions.items():
            if name in self.reads[function_name]:
                function.function.add_environment(name, value)


@jsii.implements(IValidation)
class _EveryReadHasAValue:
    """Synth fails if a function reads a variable the stack never set (its handler would fail at import)."""

    def __init__(self, factory: FunctionFactory) -> None:
        self.factory = factory

    def validate(self) -> list[str]:
        return [f"function {name} reads {variable}, which the stack never sets"
                for name, reads in self.factory.reads.items() for variable in reads
                if variable not in self.factory.environment]


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
