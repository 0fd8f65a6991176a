"""Deploys the synthesized stack into moto, applying only the documented rewrites.

The template is the one ``cdk synth`` writes; nothing here lists resources by hand. moto's
CloudFormation takes most of it. What it cannot take is applied from the template's own
properties once the stack exists:

1. The CDK bootstrap version parameter is created, and every file asset is zipped and uploaded
   to the bootstrap bucket named in ``<stack>.assets.json``.
2. ``Custom::S3BucketNotifications`` is removed (moto never completes it); its notification
   configuration is applied with ``PutBucketNotificationConfiguration``.
3. ``AWS::Lambda::EventSourceMapping`` is removed (moto would invoke synchronously, one record at a
   time); the runtime's pollers run each mapping with its BatchSize, MaximumConcurrency,
   ReportBatchItemFailures, retry attempts and on-failure destination.
4. ``AWS::SNS::Subscription`` (skipped by moto) is applied with ``Subscribe``.
5. ``AWS::StepFunctions::StateMachine`` stays (so references resolve), and is also created through
   the API with its definition inlined and substituted, because moto's execution engine does not
   see machines created by its CloudFormation.
6. ``AWS::Events::Rule`` for Step Functions status changes and schedules: moto emits no such
   events, so the runtime's watchers invoke the rule's targets (see :mod:`rekpipe.emulator.runtime`).
7. ``AWS::S3::Bucket`` ``VersioningConfiguration`` (ignored by moto's CloudFormation) is applied
   with ``PutBucketVersioning``, so tasks are keyed by version as in AWS.
8. ``AWS::SQS::Queue`` with ``FifoQueue`` and no ``QueueName`` gets ``<logical id>.fifo``: CloudFormation
   generates a name with the ``.fifo`` suffix (AWS::SQS::Queue, "QueueName": "If you don't specify a name,
   AWS CloudFormation generates a unique physical ID ... for FIFO queues ... the .fifo suffix"), moto's
   generates one without it and then refuses the queue.

Over 400 lines, on purpose: the numbered list above is one rule per gap between the synthesized template and
moto's CloudFormation, each applied here beside its explanation.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from rekpipe.emulator.event_filters import parse_filter_criteria
from rekpipe.emulator.template import Resolver, resources_of_type, substitute_definition

if TYPE_CHECKING:
    from pathlib import Path

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "21"
ACCOUNT_ID = "123456789012"
REMOVED_TYPES = ("Custom::S3BucketNotifications", "AWS::Lambda::EventSourceMapping", "AWS::SNS::Subscription")
FIFO_SUFFIX = ".fifo"
MAX_QUEUE_NAME = 80


class DeployError(RuntimeError):
    """The stack could not be deployed into the emulator."""


@dataclass
class EventSourceSpec:
    """One event source mapping, resolved: what to poll and how."""

    kind: str  # "sqs" or "dynamodb"
    source_arn: str
    function_name: str
    batch_size: int
    max_concurrency: int | None
    report_batch_item_failures: bool
    max_retry_attempts: int
    on_failure_arn: str | None
    filter_patterns: list[dict[str, Any]] = field(default_factory=list)
    batching_window_seconds: float = 0.0
    """``MaximumBatchingWindowInSeconds``: how long a poller gathers records before invoking."""
    """The mapping's ``FilterCriteria`` patterns (:mod:`rekpipe.emulator.event_filters`)."""


@dataclass
class RuleSpec:
    """An EventBridge rule the runtime acts out: a schedule or Step Functions status changes."""

    function_names: list[str]
    schedule_seconds: float | None = None
    rule_arn: str = ""
    """The rule's ARN: the ``aws:SourceArn`` EventBridge presents to the target's resource policy."""
    state_machine_arns: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    queue_targets: list[QueueTarget] = field(default_factory=list)
    """SQS targets (EventBridge rule targets, or a Scheduler schedule's target)."""


@dataclass
class QueueTarget:
    """An SQS target of a rule or schedule: the message goes to ``queue_arn`` in ``message_group_id``."""

    queue_arn: str
    message_group_id: str | None = None
    input: str | None = None
    """The target's fixed ``Input`` (a schedule's may hold ``<aws.scheduler.*>`` context attributes);
    None sends the event itself, as EventBridge does."""


@dataclass
class DeployedStack:
    """What the emulator deployed: names, and the wiring it must run itself."""

    stack_name: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    template: dict[str, Any]
    event_sources: list[EventSourceSpec]
    rules: list[RuleSpec]
    state_machines: dict[str, str]
    function_names: dict[str, str]
    """Service name (folder under ``lambdas/``) -> physical function name."""
    resource_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Queue, topic and bucket policies of the template (moto's CloudFormation skips them): ARN -> documents."""


def synthesize(outdir: Path, *, settings: Any = None, stack_name: str = "RekognitionPipeline") -> Path:
    """Synthesize the app into ``outdir`` without bundling (the code runs in-process); returns the dir."""
    import cdk_app
    from rekpipe_shared.settings import PipelineSettings

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    app = cdk_app.new_app(outdir=outdir, bundling=False)
    cdk_app.build(app, checks=False, settings=settings or PipelineSettings(), stack_name=stack_name,
                  bootstrap_rule=False)
    app.synth()
    return outdir


def deploy(
    assembly: Path, *, stack_name: str = "RekognitionPipeline", region: str = "us-east-1", timeout: float = 60.0
) -> DeployedStack:
    """Deploy a synthesized stack into whatever moto the boto3 clients reach (in-process or server)."""
    template = json.loads((assembly / f"{stack_name}.template.json").read_text())
    cfn = boto3.client("cloudformation", region_name=region)
    ssm = boto3.client("ssm", region_name=region)
    ssm.put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True)
    _upload_assets(assembly, stack_name, region)
    deployable = copy.deepcopy(template)
    deployable.pop("Rules", None)
    for logical_id in [lid for lid, r in deployable["Resources"].items() if r["Type"] in REMOVED_TYPES]:
        del deployable["Resources"][logical_id]
    _drop_dangling_depends_on(deployable)
    _name_fifo_queues(deployable)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(deployable),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    _wait_for_stack(cfn, stack_name, timeout)
    # Types moto's CloudFormation does not model (alarms, policies) come back without ids: skipped.
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        if "LogicalResourceId" in r and "PhysicalResourceId" in r
    }
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resolver = Resolver(
        {
            **physical,
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::NoValue": "",
        },
        _AttributeReader(template, physical, region).get,
    )
    _apply_bucket_versioning(template, resolver, region)
    _apply_bucket_notifications(template, resolver, region)
    _apply_subscriptions(template, resolver, region)
    machines = _create_state_machines(template, resolver, region)
    return DeployedStack(
        stack_name=stack_name,
        outputs=outputs,
        physical_ids=physical,
        template=template,
        event_sources=_event_sources(template, resolver),
        rules=_rules(template, resolver, region),
        state_machines=machines,
        function_names=_function_names(template, physical),
        resource_policies=_resource_policies(template, resolver, region),
    )


def _upload_assets(assembly: Path, stack_name: str, region: str) -> None:
    manifest_path = assembly / f"{stack_name}.assets.json"
    if not manifest_path.exists():
        return
    s3 = boto3.client("s3", region_name=region)
    created: set[str] = set()
    for asset in json.loads(manifest_path.read_text()).get("files", {}).values():
        source = assembly / asset["source"]["path"]
        for destination in asset["destinations"].values():
            bucket = (
                destination["bucketName"].replace("${AWS::AccountId}", ACCOUNT_ID).replace("${AWS::Region}", region)
            )
            if bucket not in created:
                with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                    s3.create_bucket(Bucket=bucket)
                created.add(bucket)
            body = _zip_dir(source) if source.is_dir() else source.read_bytes()
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)


def _zip_dir(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _name_fifo_queues(template: dict[str, Any]) -> None:
    """Give each unnamed FIFO queue a name ending in ``.fifo`` (rewrite 8)."""
    for logical_id, resource in resources_of_type(template, "AWS::SQS::Queue").items():
        props = resource.setdefault("Properties", {})
        if props.get("FifoQueue") and "QueueName" not in props:
            props["QueueName"] = logical_id[: MAX_QUEUE_NAME - len(FIFO_SUFFIX)] + FIFO_SUFFIX


def _drop_dangling_depends_on(template: dict[str, Any]) -> None:
    present = set(template["Resources"])
    for resource in template["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if depends is not None:
            kept = [d for d in depends if d in present]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn")


def _wait_for_stack(cfn: Any, stack_name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return
        if status.endswith("FAILED") or status.startswith("ROLLBACK"):
            events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events
                if "FAILED" in e.get("ResourceStatus", "")
            ]
            raise DeployError(f"stack {stack_name} ended {status}: {'; '.join(reasons[:5])}")
        time.sleep(0.1)
    raise DeployError(f"stack {stack_name} was not created within {timeout} s")


class _AttributeReader:
    """``Fn::GetAtt`` for the resource types the pipeline uses, read back from moto."""

    def __init__(self, template: dict[str, Any], physical: dict[str, str], region: str) -> None:
        self.types = {lid: r["Type"] for lid, r in template["Resources"].items()}
        self.physical = physical
        self.region = region

    def get(self, logical_id: str, attribute: str) -> Any:
        kind, pid = self.types.get(logical_id), self.physical.get(logical_id)
        if pid is None:
            raise DeployError(f"GetAtt {logical_id}.{attribute}: resource was not deployed")
        client = lambda name: boto3.client(name, region_name=self.region)  # noqa: E731
        if kind == "AWS::SQS::Queue":
            if attribute == "QueueUrl":
                return pid
            attrs = client("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])["Attributes"]
            return attrs["QueueArn"] if attribute == "Arn" else pid.rsplit("/", 1)[-1]
        if kind == "AWS::DynamoDB::Table":
            table = client("dynamodb").describe_table(TableName=pid)["Table"]
            return table["LatestStreamArn"] if attribute == "StreamArn" else table["TableArn"]
        if kind == "AWS::Lambda::Function":
            return client("lambda").get_function(FunctionName=pid)["Configuration"]["FunctionArn"]
        if kind == "AWS::IAM::Role":
            return client("iam").get_role(RoleName=pid)["Role"]["Arn"] if attribute == "Arn" else pid
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{pid}" if attribute == "Arn" else pid
        if kind == "AWS::SNS::Topic":
            return pid if attribute == "TopicArn" else pid.rsplit(":", 1)[-1]
        if kind == "AWS::KMS::Key":
            return client("kms").describe_key(KeyId=pid)["KeyMetadata"]["Arn"]
        if kind == "AWS::StepFunctions::StateMachine":
            return pid if attribute == "Arn" else pid.rsplit(":", 1)[-1]
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{pid}:*"
        if kind == "AWS::Events::Rule" and attribute == "Arn":
            return pid if pid.startswith("arn:") else f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{pid}"
        raise DeployError(f"GetAtt {logical_id}.{attribute} of {kind} is not supported by the emulator")


def _apply_bucket_versioning(template: dict[str, Any], resolver: Resolver, region: str) -> None:
    s3 = boto3.client("s3", region_name=region)
    for logical_id, resource in resources_of_type(template, "AWS::S3::Bucket").items():
        status = (resource.get("Properties", {}).get("VersioningConfiguration") or {}).get("Status")
        if status:
            s3.put_bucket_versioning(Bucket=resolver.refs[logical_id], VersioningConfiguration={"Status": status})


def _apply_bucket_notifications(template: dict[str, Any], resolver: Resolver, region: str) -> None:
    s3 = boto3.client("s3", region_name=region)
    for resource in resources_of_type(template, "Custom::S3BucketNotifications").values():
        props = resolver.resolve(resource["Properties"])
        s3.put_bucket_notification_configuration(
            Bucket=props["BucketName"],
            NotificationConfiguration={
                k: v for k, v in props.get("NotificationConfiguration", {}).items() if k != "EventBridgeConfiguration"
            },
        )


def _apply_subscriptions(template: dict[str, Any], resolver: Resolver, region: str) -> None:
    sns = boto3.client("sns", region_name=region)
    for resource in resources_of_type(template, "AWS::SNS::Subscription").values():
        props = resolver.resolve(resource["Properties"])
        attributes = {}
        if "RawMessageDelivery" in props:
            attributes["RawMessageDelivery"] = str(props["RawMessageDelivery"]).lower()
        sns.subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], Attributes=attributes
        )


def _create_state_machines(template: dict[str, Any], resolver: Resolver, region: str) -> dict[str, str]:
    sfn = boto3.client("stepfunctions", region_name=region)
    created: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::StepFunctions::StateMachine").items():
        props = resource["Properties"]
        definition = resolver.resolve(props["DefinitionString"])
        substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
        name = resolver.refs[logical_id].rsplit(":", 1)[-1]
        arn = sfn.create_state_machine(
            name=name,
            definition=substitute_definition(definition, substitutions),
            roleArn=resolver.resolve(props["RoleArn"]),
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        created[logical_id] = arn
    return created


def _event_sources(template: dict[str, Any], resolver: Resolver) -> list[EventSourceSpec]:
    specs = []
    for resource in resources_of_type(template, "AWS::Lambda::EventSourceMapping").values():
        props = resolver.resolve(resource["Properties"])
        source = props["EventSourceArn"]
        kind = "sqs" if source.startswith("arn:aws:sqs:") else "dynamodb"
        on_failure = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        specs.append(
            EventSourceSpec(
                kind=kind,
                source_arn=source,
                function_name=str(props["FunctionName"]).rsplit(":", 1)[-1],
                batch_size=int(props.get("BatchSize", 10 if kind == "sqs" else 100)),
                max_concurrency=(props.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                max_retry_attempts=int(props.get("MaximumRetryAttempts", 10)),
                on_failure_arn=on_failure,
                filter_patterns=parse_filter_criteria(props.get("FilterCriteria")),
                batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            )
        )
    return specs


def _resource_policies(template: dict[str, Any], resolver: Resolver, region: str) -> dict[str, list[dict[str, Any]]]:
    """The documents of every queue, topic and bucket policy, by the ARN each one protects."""
    policies: dict[str, list[dict[str, Any]]] = {}
    targets = {"AWS::SQS::QueuePolicy": "Queues", "AWS::SNS::TopicPolicy": "Topics", "AWS::S3::BucketPolicy": "Bucket"}
    for kind, key in targets.items():
        for resource in resources_of_type(template, kind).values():
            props = resolver.resolve(resource["Properties"])
            names = props[key] if isinstance(props[key], list) else [props[key]]
            for name in names:
                if kind == "AWS::SQS::QueuePolicy":  # Ref of a queue is its URL
                    arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{str(name).rstrip('/').rsplit('/', 1)[-1]}"
                elif kind == "AWS::S3::BucketPolicy":
                    arn = f"arn:aws:s3:::{name}"
                else:
                    arn = str(name)
                policies.setdefault(arn, []).append(props["PolicyDocument"])
    return policies


def _rules(template: dict[str, Any], resolver: Resolver, region: str = "us-east-1") -> list[RuleSpec]:
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::Events::Rule").items():
        props = resolver.resolve(resource["Properties"])
        name = resolver.refs.get(logical_id, logical_id)
        rule_arn = name if str(name).startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{name}"
        functions = [t["Arn"].rsplit(":", 1)[-1] for t in props.get("Targets", []) if ":function:" in t["Arn"]]
        queues = [
            QueueTarget(t["Arn"], (t.get("SqsParameters") or {}).get("MessageGroupId"), t.get("Input"))
            for t in props.get("Targets", []) if str(t["Arn"]).startswith("arn:aws:sqs:")
        ]
        if not (functions or queues) or props.get("State", "ENABLED") != "ENABLED":
            continue
        schedule = props.get("ScheduleExpression")
        if schedule:
            specs.append(RuleSpec(functions, schedule_seconds=_schedule_seconds(schedule), rule_arn=rule_arn,
                                  queue_targets=queues))
            continue
        pattern = props.get("EventPattern") or {}
        if "aws.states" in (pattern.get("source") or []):
            detail = pattern.get("detail", {})
            specs.append(
                RuleSpec(
                    functions,
                    state_machine_arns=list(detail.get("stateMachineArn", [])),
                    statuses=list(detail.get("status", [])),
                    rule_arn=rule_arn,
                    queue_targets=queues,
                )
            )
    return specs + _schedules(template, resolver, region)


def _schedules(template: dict[str, Any], resolver: Resolver, region: str) -> list[RuleSpec]:
    """EventBridge Scheduler schedules with an SQS target, acted out like scheduled rules."""
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::Scheduler::Schedule").items():
        props = resolver.resolve(resource["Properties"])
        target = props.get("Target") or {}
        if props.get("State", "ENABLED") != "ENABLED" or not str(target.get("Arn", "")).startswith("arn:aws:sqs:"):
            continue
        name = props.get("Name") or logical_id
        queue = QueueTarget(target["Arn"], (target.get("SqsParameters") or {}).get("MessageGroupId"),
                            target.get("Input"))
        specs.append(RuleSpec([], schedule_seconds=_schedule_seconds(props["ScheduleExpression"]),
                              rule_arn=f"arn:aws:scheduler:{region}:{ACCOUNT_ID}:schedule/default/{name}",
                              queue_targets=[queue]))
    return specs


def _schedule_seconds(expression: str) -> float:
    if expression.startswith("rate("):
        amount, unit = expression[5:-1].split()
        return (
            float(amount)
            * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]
        )
    return 300.0  # cron(...) schedules: the runtime checks every five minutes


def _function_names(template: dict[str, Any], physical: dict[str, str]) -> dict[str, str]:
    names = {}
    for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function").items():
        service = ((resource["Properties"].get("Environment") or {}).get("Variables") or {}).get(
            "POWERTOOLS_SERVICE_NAME"
        )
        if isinstance(service, str) and logical_id in physical:
            names[service] = physical[logical_id]
    return names
