"""Turn on moto's IAM-like access control and tell it which resource each request touches.

moto authenticates every request (the access key must belong to a user or an STS session, and the
signature must match) and evaluates the caller's identity-based policies. But only S3, SQS, IAM and
STS tell it which resource a request touches; for every other service it checks against ``*``, so a
policy that names a table ARN would be refused, and ``Resource: "*"`` would pass everywhere. This
module adds the resolvers the runtime needs, mirroring the Service Authorization Reference:

* DynamoDB: the table ARN, ``<table>/index/<name>`` for a Query or Scan of an index, one check per
  item action inside ``TransactWriteItems`` (``dynamodb:PutItem``, ``UpdateItem``, ``DeleteItem``,
  ``ConditionCheckItem``) and ``TransactGetItems`` (``GetItem``), and one per table of a batch.
* DynamoDB Streams: the stream ARN (from ``StreamArn`` or the shard iterator).
* SNS: the topic ARN. Step Functions: the state machine or execution ARN; ``SendTask*`` is checked
  against the state machine that owns the task token. Lambda: the function ARN (``Invoke`` is the IAM
  action ``lambda:InvokeFunction``).

A refusal reads as AWS writes it ("Troubleshoot access denied error messages", IAM User Guide):
``User: <arn> is not authorized to perform: <action> on resource: <arn> because no identity-based
policy allows the <action> action``, with each service's own error code.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from rekpipe.emulator.iam.resource_policies import Decision

if TYPE_CHECKING:
    from collections.abc import Callable

LOG = logging.getLogger("rekpipe.emulator.iam")
_TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_IAM_ACTION_NAMES = {("lambda", "Invoke"): "InvokeFunction", ("lambda", "InvokeAsync"): "InvokeFunction"}
_SQS_BATCH_ACTIONS = {"sqs:SendMessageBatch": "sqs:SendMessage", "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
                      "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility"}
"""IAM has no batch actions for SQS: a batch call is authorized as its single action ("Amazon SQS API
permissions: Actions and resource reference", SQS Developer Guide). moto checks the batch name."""
_ERROR_CODES = {"dynamodb": "AccessDeniedException", "states": "AccessDeniedException",
                "lambda": "AccessDeniedException", "events": "AccessDeniedException",
                "logs": "AccessDeniedException", "sns": "AuthorizationError"}
_JSON_SERVICES = {"dynamodb", "states", "lambda", "events", "logs"}


@dataclass(frozen=True)
class AnyOf:
    """Allowed if any one of these resources is (a task token of an unknown state machine)."""

    resources: tuple[str, ...]

    def __str__(self) -> str:
        return self.resources[0] if len(self.resources) == 1 else f"any of {', '.join(self.resources)}"


Check = tuple[str, "str | AnyOf"]
"""One authorization: the IAM action (``service:Action``) and the resource it applies to."""


@dataclass
class Refusal:
    """One request the emulator refused, kept so tests and ``rekpipe local run`` can show it."""

    principal: str
    action: str
    resource: str
    reason: str

    @property
    def message(self) -> str:
        return (f"User: {self.principal} is not authorized to perform: {self.action} on resource: "
                f"{self.resource} {self.reason}")


class RefusalLog:
    """Every refusal since the runtime started, newest last (thread-safe, bounded)."""

    def __init__(self, limit: int = 1000) -> None:
        self._items: list[Refusal] = []
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, refusal: Refusal) -> None:
        with self._lock:
            self._items.append(refusal)
            del self._items[:-self._limit]

    def all(self) -> list[Refusal]:
        with self._lock:
            return list(self._items)


# --- resolvers -----------------------------------------------------------------------------------
def _table_arn(response: Any, table: str) -> str:
    if table.startswith("arn:"):
        return table
    return f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/{table}"


def _dynamodb_checks(response: Any, action: str) -> list[Check]:
    body = response.body if isinstance(response.body, dict) else json.loads(response.body or "{}")
    if action in ("TransactWriteItems", "TransactGetItems"):
        checks: list[Check] = []
        for item in body.get("TransactItems", []):
            for kind, spec in item.items():
                checks.append((f"dynamodb:{_TRANSACT_ITEM_ACTIONS.get(kind, kind)}",
                               _table_arn(response, spec["TableName"])))
        return checks
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{action}", _table_arn(response, table)) for table in body.get("RequestItems", {})]
    table = body.get("TableName")
    if not table:
        return [(f"dynamodb:{action}", "*")]
    resource = _table_arn(response, table)
    if body.get("IndexName") and action in ("Query", "Scan"):
        resource = f"{resource}/index/{body['IndexName']}"
    return [(f"dynamodb:{action}", resource)]


def _streams_checks(response: Any, action: str) -> list[Check]:
    body = json.loads(response.body or "{}") if isinstance(response.body, str | bytes) else response.body
    stream = body.get("StreamArn") or str(body.get("ShardIterator", "")).split("|", 1)[0]
    return [(f"dynamodb:{action}", stream or "*")]


def _sns_checks(response: Any, action: str) -> list[Check]:
    topic = response._get_param("TopicArn") or response._get_param("TargetArn") or "*"
    checks: list[Check] = [(f"sns:{action}", topic)]
    if action in ("Publish", "PublishBatch") and topic != "*":
        # A publisher to an encrypted topic needs the key too (SNS Developer Guide, "Encryption at rest").
        try:
            key = str(response.backend.get_topic(topic).kms_master_key_id or "")
        except Exception:  # an unknown topic: SNS answers NotFound after authorization
            key = ""
        if key and not key.startswith("alias/"):
            key_arn = key if key.startswith("arn:") else f"arn:aws:kms:{response.region}:{response.current_account}:key/{key}"
            checks += [("kms:GenerateDataKey", key_arn), ("kms:Decrypt", key_arn)]
    return checks


def _state_machine_of_token(response: Any, token: str) -> str | AnyOf:
    backend = response.stepfunction_backend
    machines = list(getattr(backend, "state_machines", []))
    for machine in machines:
        for execution in list(getattr(machine, "executions", [])):
            worker = getattr(execution, "exec_worker", None)
            pool = getattr(getattr(worker, "env", None), "callback_pool_manager", None)
            if pool is not None and pool.get(token) is not None:
                return str(machine.arn)
    # An ended execution may have dropped its callbacks: any machine of the account could own it.
    return AnyOf(tuple(str(machine.arn) for machine in machines) or ("*",))


def _states_checks(response: Any, action: str) -> list[Check]:
    if action.startswith("SendTask"):
        return [(f"states:{action}", _state_machine_of_token(response, response._get_param("taskToken") or ""))]
    resource = (response._get_param("executionArn") or response._get_param("stateMachineArn")
                or response._get_param("resourceArn") or "*")
    return [(f"states:{action}", resource)]


def _lambda_checks(response: Any, action: str) -> list[Check]:
    iam_action = _IAM_ACTION_NAMES.get(("lambda", action), action)
    path = urlparse(response.uri).path
    parts = path.split("/functions/", 1)
    name = unquote(parts[1].split("/", 1)[0]) if len(parts) == 2 else ""
    if not name:
        return [(f"lambda:{iam_action}", "*")]
    if not name.startswith("arn:"):
        name = f"arn:aws:lambda:{response.region}:{response.current_account}:function:{name}"
    qualifier = response.querystring.get("Qualifier", [None])[0] if hasattr(response, "querystring") else None
    if qualifier and name.count(":") == 6:
        name = f"{name}:{qualifier}"
    return [(f"lambda:{iam_action}", name)]


def _sqs_checks(response: Any, action: str) -> list[Check]:
    iam_action = _SQS_BATCH_ACTIONS.get(f"sqs:{action}", f"sqs:{action}")
    if action == "GetQueueUrl":  # authorized on the queue it names (moto checks "*")
        account = response._get_param("QueueOwnerAWSAccountId") or response.current_account
        return [(iam_action, f"arn:aws:sqs:{response.region}:{account}:{response._get_param('QueueName')}")]
    return [(iam_action, response._determine_resource())]


RESOLVERS: dict[str, Callable[[Any, str], list[Check]]] = {
    "SQSResponse": _sqs_checks,
    "DynamoHandler": _dynamodb_checks,
    "DynamoDBStreamsHandler": _streams_checks,
    "SNSResponse": _sns_checks,
    "StepFunctionResponse": _states_checks,
    "LambdaResponse": _lambda_checks,
}
"""Response class name -> the checks of one request; other services keep moto's own resource."""


def _s3_action(response: Any, action: str) -> str:
    """Correct moto's S3 action names to the ones IAM checks (Amazon S3 User Guide, "Policy actions for S3").

    HeadBucket is authorized as ``s3:ListBucket``, and HeadObject of a version as ``s3:GetObjectVersion``.
    """
    if action == "s3:HeadBucket":
        return "s3:ListBucket"
    versioned = "versionId" in (getattr(response, "querystring", None) or {})
    if action == "s3:GetObject" and response.method == "HEAD" and versioned:
        return "s3:GetObjectVersion"
    return action


# --- evaluation ------------------------------------------------------------------------------------
def _decide(policies: list[Any], action: str, resource: str | AnyOf) -> str | None:
    """None when allowed; otherwise the end of AWS's message saying why not."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    resources = resource.resources if isinstance(resource, AnyOf) else (resource,)
    allowed = False
    for candidate in resources:
        for policy in policies:
            result = IAMPolicy(policy).is_action_permitted(action, candidate)
            if result == PermissionResult.DENIED:
                return "with an explicit deny in an identity-based policy"
            if result == PermissionResult.PERMITTED:
                allowed = True
    return None if allowed else f"because no identity-based policy allows the {action} action"


def _refuse(service: str, refusal: Refusal, *, s3: bool = False, json_protocol: bool = False) -> Exception:
    from moto.core.exceptions import JsonRESTError
    from moto.core.exceptions import _RESTError as RESTError

    if s3:  # moto serializes S3's model errors itself (403 AccessDenied)
        from moto.s3.exceptions import S3ClientError

        return S3ClientError("AccessDenied", refusal.message)
    code = _ERROR_CODES.get(service, "AccessDenied")
    if service in _JSON_SERVICES or json_protocol:
        error: Exception = JsonRESTError(code, refusal.message)
        error.code = 403 if service == "lambda" else 400
    else:
        error = RESTError(code, refusal.message)
        error.code = 403
    return error


class Authorization:
    """moto's access control, on, with resource resolvers and AWS-shaped refusals.

    Parameters
    ----------
    refusals: RefusalLog
        Where each refusal is recorded.
    resource_policies: Callable[[str, str, str], Decision] | None
        ``(resource ARN, action, principal ARN) -> Decision`` of the resource's own policies. In one
        account an Allow in either the identity's or the resource's policies allows, and an explicit
        Deny in either refuses ("Policy evaluation logic", IAM User Guide).
    """

    def __init__(self, refusals: RefusalLog,
                 resource_policies: Callable[[str, str, str], Decision] | None = None,
                 used: set[tuple[str, str]] | None = None) -> None:
        self.refusals = refusals
        self.resource_policies = resource_policies
        self.used = used if used is not None else set()
        """(principal ARN, action) of every allowed check: what each role really needed."""
        self._undo: list[Callable[[], None]] = []

    def install(self) -> Callable[[], None]:
        """Switch authorization on for every request from now on; returns the function that undoes it."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.iam.access_control import IAMRequest, S3IAMRequest

        authorization = self
        saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
        original_normal = ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_normal_action"]
        original_s3 = ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_s3_action"]

        def normal(self: Any, resource: str = "*") -> None:
            if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
                return original_normal(self, resource)
            authorization._authorize(self, IAMRequest, resource, resolver=RESOLVERS.get(type(self).__name__))

        def s3_action(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
            if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
                return original_s3(self, bucket_name, key_name)
            arn = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
            authorization._authorize(self, S3IAMRequest, f"arn:aws:s3:::{arn}", resolver=None, s3=True)

        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = normal
        ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = s3_action
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0

        def uninstall() -> None:
            ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = original_normal
            ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = original_s3
            settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved

        return uninstall

    def _authorize(self, response: Any, request_cls: type, resource: str,
                   resolver: Callable[[Any, str], list[Check]] | None, *, s3: bool = False) -> None:
        if response.headers.get("X-Amz-Target") in getattr(response, "PUBLIC_OPERATIONS", ()):
            return
        parsed = urlparse(response.uri)
        path = response.raw_path + (f"?{parsed.query}" if parsed.query else "")
        action = response._get_action()
        # moto 5.2.5 fills ``data`` with the headers of a bodiless REST request (Lambda), and hashes that
        # as the payload, so every signed Lambda GET fails its own signature check; an empty body is empty.
        # Upstream: docs/upstream/iam-signature-bodiless-rest-request.md (still in moto at 0af643a, 2026-08-22).
        form = "x-www-form-urlencoded" in str(response.headers.get("Content-Type", ""))
        data = response.data if response.raw_body or form else {}
        iam_request = request_cls(account_id=response.current_account, method=response.method, path=path,
                                  data=data, body=response.raw_body, headers=response.headers, action=action)
        iam_request.check_signature()
        service = iam_request._action.split(":", 1)[0]
        if iam_request._action in ("sts:GetCallerIdentity", "sts:AssumeRole"):
            iam_request.check_action_permitted(resource)  # moto's own rules, trust relationships included
            return
        if resolver:
            checks: list[Check] = resolver(response, action)
        else:
            iam_action = _s3_action(response, iam_request._action) if s3 else iam_request._action
            checks = [(_SQS_BATCH_ACTIONS.get(iam_action, iam_action), resource)]
        policies = iam_request._access_key.collect_policies()
        principal = iam_request._access_key.arn
        for check_action, check_resource in checks:
            reason = _decide(policies, check_action, check_resource)
            if self.resource_policies is not None and isinstance(check_resource, str) and check_resource != "*":
                decision = self.resource_policies(check_resource, check_action, principal)
                if decision is Decision.EXPLICIT_DENY:
                    reason = "with an explicit deny in a resource-based policy"
                elif decision is Decision.ALLOW and reason and reason.startswith("because no identity"):
                    reason = None
            if reason is None:
                self.used.add((principal, check_action))
            else:
                refusal = Refusal(principal=principal, action=check_action,
                                  resource=str(check_resource), reason=reason)
                self.refusals.add(refusal)
                LOG.warning("refused: %s", refusal.message)
                raise _refuse(service, refusal, s3=s3,
                              json_protocol="json" in str(response.headers.get("Content-Type", "")))


__all__ = ["AnyOf", "Authorization", "Refusal", "RefusalLog", "RESOLVERS"]
