"""Where the CLI's AWS calls go: global options, the client factory and the stack's outputs.

Every command resolves the same way: ``--local`` reads the running emulator's endpoint from
``.rekpipe/emulator.json``; otherwise ``--endpoint-url``, ``--region`` and ``--profile`` (or the
usual AWS environment) decide. Clients are built once per service and all go to that endpoint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rekpipe.cli.exceptions import (
    CredentialsError,
    EmulatorNotRunningError,
    RegionMissingError,
    StackNotFoundError,
    StackNotReadyError,
    StackOutputMissingError,
    UserException,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3

DEFAULT_STACK_NAME = "RekognitionPipeline"
EMULATOR_FILE = Path(".rekpipe") / "emulator.json"
"""Written by ``rekpipe local up`` in the folder it runs in: ``{"endpoint_url", "region", "stack_name"}``."""
LOCAL_CREDENTIALS = {"aws_access_key_id": "rekpipe-local", "aws_secret_access_key": "rekpipe-local"}
"""The emulator accepts any signature; used only with --local when no credentials are configured."""

_UNUSABLE_STATUSES = frozenset({
    "CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED", "ROLLBACK_COMPLETE",
    "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE",
})
_PASCAL_WORD = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class GlobalOptions:
    """The group's options as given on the command line (None where not given).

    Parameters
    ----------
    stack_name: str | None
        ``--stack-name``; the emulator file's stack, then ``RekognitionPipeline``, when absent.
    region, profile, endpoint_url: str | None
        Passed to boto3; None leaves the choice to the usual AWS configuration.
    local: bool
        ``--local``: take endpoint, region and stack from the running emulator.
    """

    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    local: bool = False


@dataclass(frozen=True)
class Target:
    """The resolved destination of every call: what the CLI echoes before acting."""

    stack_name: str
    region: str
    profile: str | None
    endpoint_url: str | None
    local: bool

    def describe(self) -> str:
        where = f"{self.region}" + (f" via {self.endpoint_url}" if self.endpoint_url else "")
        who = f", profile {self.profile}" if self.profile else ""
        return f"stack {self.stack_name} in {where}{who}"


def read_emulator_file(cwd: Path | None = None) -> dict[str, Any]:
    """The running emulator's endpoint file, or :class:`EmulatorNotRunningError`."""
    path = (cwd or Path.cwd()) / EMULATOR_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmulatorNotRunningError(str(path)) from None
    except (OSError, ValueError) as error:
        raise UserException(f"Cannot read {path} ({error}): restart the emulator with `rekpipe local up`") from None
    if not isinstance(values, dict) or not values.get("endpoint_url"):
        raise UserException(f"{path} has no endpoint_url: restart the emulator with `rekpipe local up`")
    return values


class Clients:
    """boto3 clients for one target, built once per service; tests inject fakes with ``overrides``.

    Parameters
    ----------
    options: GlobalOptions
        The group's options.
    overrides: dict[str, Any] | None
        Service name -> client to use instead of building one (a fake ``s3control`` in tests).
    cwd: Path | None
        Where to look for ``.rekpipe/emulator.json`` (the current directory by default).
    """

    def __init__(self, options: GlobalOptions, *, overrides: dict[str, Any] | None = None,
                 cwd: Path | None = None) -> None:
        import boto3
        from botocore.exceptions import ProfileNotFound

        endpoint_url, region, stack_name = options.endpoint_url, options.region, options.stack_name
        if options.local:
            if endpoint_url:
                raise UserException("Pass either --local or --endpoint-url, not both")
            emulator = read_emulator_file(cwd)
            endpoint_url = str(emulator["endpoint_url"])
            region = region or emulator.get("region")
            stack_name = stack_name or emulator.get("stack_name")
        try:
            self.session: boto3.session.Session = boto3.session.Session(profile_name=options.profile,
                                                                        region_name=region)
        except ProfileNotFound:
            raise CredentialsError(f"AWS profile {options.profile!r} was not found") from None
        if not self.session.region_name:
            raise RegionMissingError()
        if options.local and not options.profile:
            # The emulator authorizes every call: you act as its operator, whose keys it wrote down.
            credentials = emulator.get("credentials") or LOCAL_CREDENTIALS
            self.session = boto3.session.Session(region_name=self.session.region_name, **credentials)
        self.target = Target(
            stack_name=stack_name or DEFAULT_STACK_NAME,
            region=self.session.region_name,
            profile=options.profile,
            endpoint_url=endpoint_url,
            local=options.local,
        )
        self._clients: dict[str, Any] = dict(overrides or {})
        self._outputs: StackOutputs | None = None

    def client(self, service: str) -> Any:
        """The client of one service, at the target's endpoint and region."""
        if service not in self._clients:
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_appid="rekpipe-cli")
            client = self.session.client(service, endpoint_url=self.target.endpoint_url, config=config)
            if self.target.endpoint_url and service == "s3control":
                client.meta.events.register("before-sign", _keep_endpoint_host(self.target.endpoint_url))
            client.meta.events.register("before-parameter-build", _remember_resource)
            client.meta.events.register("after-call", _name_denied_action)
            self._clients[service] = client
        return self._clients[service]

    def stack_outputs(self) -> StackOutputs:
        """The stack's outputs, read once."""
        if self._outputs is None:
            self._outputs = load_stack_outputs(self.client("cloudformation"), self.target)
        return self._outputs


def _keep_endpoint_host(endpoint_url: str) -> Callable[..., None]:
    """S3 Control's endpoint rules put the account id in front of the host (``<account>.127.0.0.1``),
    which no local endpoint resolves; send the request to the endpoint as given (the account id
    still travels in the ``x-amz-account-id`` header)."""
    from urllib.parse import urlsplit, urlunsplit

    host = urlsplit(endpoint_url).netloc

    def keep(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc != host and parts.netloc.endswith(f".{host}"):
            request.url = urlunsplit(parts._replace(netloc=host))

    return keep


_RESOURCE_PARAMS = ("QueueUrl", "TableName", "StackName", "stateMachineArn", "FunctionArn")
_IAM_ACTIONS = {
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
}
"""API operations whose IAM action has another name."""


def _remember_resource(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Keep the resource a call is about in its request context, for :func:`_name_denied_action`."""
    if params.get("Bucket"):
        context["rekpipe_resource"] = f"s3://{params['Bucket']}/{params.get('Key', '')}"
        return
    for name in _RESOURCE_PARAMS:
        if params.get(name):
            context["rekpipe_resource"] = str(params[name])
            return


def _name_denied_action(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any],
                        **_: Any) -> None:
    """Record the IAM action and resource of a failed call in its error, so a denial can name both.

    ClientError knows the operation but not the service (the service model knows both), and
    S3's "Access Denied" names neither the action nor the bucket.
    """
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if getattr(http_response, "status_code", 200) >= 300 and isinstance(error, dict):
        action = f"{model.service_model.signing_name}:{model.name}"
        error.setdefault("RekpipeAction", _IAM_ACTIONS.get(action, action))
        if context.get("rekpipe_resource"):
            error.setdefault("RekpipeResource", context["rekpipe_resource"])


@dataclass(frozen=True)
class StackOutputs:
    """The stack's outputs, typed; each is None when this deployment does not have it.

    ``dlq_urls`` holds every ``*DlqUrl`` output by name without the suffix (``Image``, ``Video``...).
    """

    stack_name: str
    content_bucket_name: str | None = None
    existing_content_bucket_name: str | None = None
    inventory_bucket_name: str | None = None
    output_bucket_name: str | None = None
    task_table_name: str | None = None
    semaphore_table_name: str | None = None
    image_queue_url: str | None = None
    video_queue_url: str | None = None
    video_state_machine_arn: str | None = None
    video_topic_arn: str | None = None
    batch_operations_role_arn: str | None = None
    ingest_batch_function_arn: str | None = None
    dlq_urls: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_outputs(cls, stack_name: str, outputs: dict[str, str]) -> StackOutputs:
        """Build from ``OutputKey -> OutputValue``; unknown keys stay in ``raw``."""
        known = {name for name in cls.__dataclass_fields__ if name not in ("stack_name", "dlq_urls", "raw")}
        values: dict[str, Any] = {}
        for key, value in outputs.items():
            name = _PASCAL_WORD.sub("_", key).lower()
            if name in known:
                values[name] = value
        dlqs = {key[: -len("DlqUrl")]: value for key, value in sorted(outputs.items())
                if key.endswith("DlqUrl") and len(key) > len("DlqUrl")}
        return cls(stack_name=stack_name, dlq_urls=dlqs, raw=dict(outputs), **values)

    def require(self, name: str) -> str:
        """An output this command cannot do without, e.g. ``require("TaskTableName")``."""
        value = self.raw.get(name)
        if not value:
            raise StackOutputMissingError(self.stack_name, name)
        return value

    @property
    def queue_urls(self) -> dict[str, str]:
        """Every queue the stack outputs, work queues first: ``{"ImageQueue": url, ..., "ImageDlq": url}``."""
        queues = {key[: -len("Url")]: value for key, value in self.raw.items()
                  if key.endswith("QueueUrl") and value}
        queues.update({f"{name}Dlq": url for name, url in self.dlq_urls.items()})
        return queues


def load_stack_outputs(cloudformation: Any, target: Target) -> StackOutputs:
    """Describe the stack and type its outputs, with errors that say what to do."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=target.stack_name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in message:
            raise StackNotFoundError(target.stack_name, target.region,
                                     endpoint_url=target.endpoint_url if target.local else None) from None
        raise
    if not stacks:
        raise StackNotFoundError(target.stack_name, target.region)
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status in _UNUSABLE_STATUSES:
        raise StackNotReadyError(target.stack_name, target.region, status)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", []) if "OutputValue" in o}
    return StackOutputs.from_outputs(target.stack_name, outputs)
