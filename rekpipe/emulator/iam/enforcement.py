"""IAM enforcement for the embedded runtime: every caller acts as itself, and AWS's refusals happen here.

:class:`IamEnforcement` ties the parts together while the runtime runs:

* moto's access control is on (:mod:`.authorization`), with resource resolvers and AWS-shaped errors;
* botocore signs with the identity acting on the thread (:mod:`.signing`): the operator by default,
  a function's role inside its invocation and its event source poller, the state machine's role in
  its tasks, the Batch Operations role in a job, the Rekognition role when the simulator publishes;
* service deliveries that only resource policies allow are checked (:mod:`.resource_policies`):
  S3 -> Lambda and EventBridge -> Lambda against the function's permissions, SNS -> SQS against the
  queue policy, and every role against its trust policy;
* identity allows are combined with the target's resource policy (queue, topic, bucket) as AWS does
  for one account: an explicit Deny in either refuses, an Allow in either allows.

What stays unchecked is listed in the README ("What the local world checks").
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rekpipe.emulator.iam.authorization import Authorization, Refusal, RefusalLog
from rekpipe.emulator.iam.identities import IdentityBroker, RoleSession
from rekpipe.emulator.iam.resource_policies import Decision, PolicyRequest, evaluate, principal_arn
from rekpipe.emulator.iam.signing import acting_as, install_contextual_signing

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.credentials import Credentials

LOG = logging.getLogger("rekpipe.emulator.iam")
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
STATES_PRINCIPAL = "states.amazonaws.com"
REKOGNITION_PRINCIPAL = "rekognition.amazonaws.com"
BATCH_OPERATIONS_PRINCIPAL = "batchoperations.s3.amazonaws.com"
LOCAL_TLS_VERSION = "1.3"
"""Loopback HTTP stands in for TLS: AWS SDKs use HTTPS (TLS 1.2+), so TLS-only policies are evaluated as met."""
_active: IamEnforcement | None = None
_active_guard = threading.Lock()


def active() -> IamEnforcement | None:
    """The enforcement of the running embedded runtime, or None (plain moto, unit tests)."""
    return _active


@dataclass(frozen=True)
class DeliveryRefusal:
    """A service delivery that a resource or trust policy does not allow (AWS drops or fails it)."""

    service: str
    action: str
    resource: str
    source: str
    decision: str

    @property
    def message(self) -> str:
        return (f"{self.service} may not perform {self.action} on {self.resource} for {self.source}: "
                f"{self.decision} in its resource policy")


@dataclass
class ResourcePolicies:
    """Resource-based policies from the deployed template, by the ARN they protect."""

    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, arn: str, document: dict[str, Any]) -> None:
        self.documents.setdefault(arn, []).append(document)

    def evaluate(self, arn: str, request: PolicyRequest) -> Decision:
        """Explicit deny in any document wins, then an allow in any, else implicit deny."""
        decisions = [evaluate(doc, request) for doc in self.documents.get(arn, [])]
        if Decision.EXPLICIT_DENY in decisions:
            return Decision.EXPLICIT_DENY
        return Decision.ALLOW if Decision.ALLOW in decisions else Decision.IMPLICIT_DENY


class IamEnforcement:
    """Installs IAM enforcement into the in-process moto and hands out identities.

    Parameters
    ----------
    account_id, region: str
        The emulated account and region.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.broker = IdentityBroker(account_id, region)
        self.refusals = RefusalLog()
        self.delivery_refusals: list[DeliveryRefusal] = []
        self.resource_policies = ResourcePolicies()
        self.used: set[tuple[str, str]] = set()
        self.operator: Credentials | None = None
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------
    def install(self) -> IamEnforcement:
        """Create the operator, then turn on signing, authorization and the delivery checks."""
        global _active
        with _active_guard:
            if _active is not None:
                raise RuntimeError("IAM enforcement is already installed in this process")
            _active = self
        self.operator = self.broker.operator()
        self._undo.append(install_contextual_signing(fallback=self._unknown_key_acts_as_operator))
        self._undo.append(Authorization(self.refusals, resource_policies=self._resource_policy_decision,
                                        used=self.used).install())
        self._undo.append(self._patch_step_functions_clients())
        self._undo.append(self._patch_s3_lambda_notifications())
        self._undo.append(self._patch_sns_sqs_delivery())
        return self

    def uninstall(self) -> None:
        global _active
        while self._undo:
            self._undo.pop()()
        with _active_guard:
            if _active is self:
                _active = None

    # --- identities ---------------------------------------------------------------------------------
    def function_session(self, function: Any) -> RoleSession:
        """The session Lambda takes for a function: its role, session name = function name (as in AWS)."""
        return self.broker.service_session(function.role, LAMBDA_PRINCIPAL, session_name=function.function_name,
                                           source_arn=function.function_arn)

    def service_session(self, role_arn: str, service: str, *, session_name: str,
                        source_arn: str | None = None) -> RoleSession:
        return self.broker.service_session(role_arn, service, session_name=session_name, source_arn=source_arn)

    def _unknown_key_acts_as_operator(self, credentials: Any) -> Credentials | None:
        """Keys moto never issued (the runtime's placeholder keys, a client made before the runtime
        started) act as the operator, that is, as you; keys of users and sessions act as themselves."""
        access_key = credentials.get_frozen_credentials().access_key
        return None if self.broker.is_known(access_key) else self.operator

    def acting_as_operator(self) -> Any:
        return acting_as(self.operator)

    # --- resource policies ----------------------------------------------------------------------------
    def load_resource_policies(self, policies: dict[str, list[dict[str, Any]]]) -> None:
        """Queue, topic and bucket policies of the deployed template (ARN -> documents)."""
        for arn, documents in policies.items():
            for document in documents:
                self.resource_policies.add(arn, document)

    def _resource_policy_decision(self, resource: str, action: str, principal: str) -> Decision:
        bucket = resource.split("/", 1)[0] if resource.startswith("arn:aws:s3:::") else None
        context = {"aws:SecureTransport": "true", "aws:PrincipalAccount": self.account_id,
                   "aws:PrincipalArn": principal_arn(principal), "s3:TlsVersion": LOCAL_TLS_VERSION}
        request = PolicyRequest(action=action, resource=resource, aws_principal=principal, context=context)
        decision = self.resource_policies.evaluate(resource, request)
        if bucket and decision is Decision.IMPLICIT_DENY:
            decision = self.resource_policies.evaluate(bucket, request)
        return decision

    def check_delivery(self, *, service: str, action: str, resource: str, source_arn: str,
                       policy: dict[str, Any] | str | None) -> bool:
        """Whether ``service`` may deliver to ``resource`` on behalf of ``source_arn``; records a refusal."""
        context = {"aws:SourceArn": source_arn, "aws:SourceAccount": self.account_id, "aws:SecureTransport": "true"}
        request = PolicyRequest(action=action, resource=resource, service_principal=service, context=context)
        decision = evaluate(policy, request) if policy is not None else self.resource_policies.evaluate(resource,
                                                                                                        request)
        if decision is Decision.ALLOW:
            return True
        refusal = DeliveryRefusal(service, action, resource, source_arn, decision.value)
        with self._lock:
            self.delivery_refusals.append(refusal)
        LOG.warning("refused: %s", refusal.message)
        return False

    def lambda_permission_allows(self, function_arn: str, service: str, source_arn: str) -> bool:
        """A Lambda function's resource policy lets ``service`` invoke it for ``source_arn``."""
        from moto.awslambda.utils import get_backend

        backend = get_backend(self.account_id, self.region)
        try:
            policy: Any = backend.get_policy(function_arn, None)
        except Exception:  # no resource policy at all: nothing is allowed
            policy = None
        if isinstance(policy, str):
            policy = json.loads(policy)
        if isinstance(policy, dict) and "Policy" in policy:
            policy = policy["Policy"]
            policy = json.loads(policy) if isinstance(policy, str) else policy
        return self.check_delivery(service=service, action="lambda:InvokeFunction", resource=function_arn,
                                   source_arn=source_arn, policy=policy or {"Statement": []})

    # --- patches --------------------------------------------------------------------------------------
    def _state_machine_session(self, role_arn: str) -> RoleSession:
        from moto.stepfunctions.responses import get_backend

        source = None
        for machine in get_backend(self.account_id, self.region).state_machines:
            if getattr(machine, "roleArn", None) == role_arn:
                source = machine.arn
                break
        name = (source or role_arn).rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        return self.broker.service_session(role_arn, STATES_PRINCIPAL, session_name=name, source_arn=source)

    def _patch_step_functions_clients(self) -> Callable[[], None]:
        """moto's interpreter signs its tasks with the fixed key ``ak``; sign them as the execution's role."""
        import boto3
        from botocore.config import Config
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
        from moto.stepfunctions.parser.asl.utils import boto_client as module

        original = module.boto_client_for
        enforcement = self

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            role_arn = getattr(state_credentials, "role_arn", None)
            if not role_arn or active() is not enforcement:
                return original(region, service, state_credentials)
            credentials = enforcement._state_machine_session(role_arn).credentials.get_frozen_credentials()
            kwargs = {} if botocore_stubber.enabled else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
            return boto3.client(
                service_name=service, region_name=region, aws_access_key_id=credentials.access_key,
                aws_secret_access_key=credentials.secret_key, aws_session_token=credentials.token,
                config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                              connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                              read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS),
                **kwargs,
            )

        _replace_everywhere("moto.stepfunctions", original, boto_client_for)
        module.boto_client_for = boto_client_for

        def undo() -> None:
            module.boto_client_for = original
            # modules imported while installed bound the replacement too
            _replace_everywhere("moto.stepfunctions", boto_client_for, original)

        return undo

    def _patch_s3_lambda_notifications(self) -> Callable[[], None]:
        """S3 invokes a function only if the function's policy allows s3.amazonaws.com for that bucket."""
        from moto.s3 import notifications

        original = notifications._invoke_awslambda
        enforcement = self

        def invoke(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            try:
                bucket_arn = event_body["Records"][0]["s3"]["bucket"]["arn"]
            except (KeyError, IndexError, TypeError):
                bucket_arn = ""
            if enforcement.lambda_permission_allows(fn_arn, "s3.amazonaws.com", bucket_arn):
                original(account_id, event_body, fn_arn, region_name)

        notifications._invoke_awslambda = invoke

        def undo() -> None:
            notifications._invoke_awslambda = original

        return undo

    def _patch_sns_sqs_delivery(self) -> Callable[[], None]:
        """SNS delivers to a queue only if the queue policy allows sns.amazonaws.com for that topic."""
        from moto.sns.models import Subscription

        original = Subscription.publish
        enforcement = self

        def publish(subscription: Any, *args: Any, **kwargs: Any) -> None:
            if subscription.protocol == "sqs" and not enforcement.check_delivery(
                service="sns.amazonaws.com", action="sqs:SendMessage", resource=subscription.endpoint,
                source_arn=subscription.topic.arn, policy=None,
            ):
                return
            original(subscription, *args, **kwargs)

        Subscription.publish = publish

        def undo() -> None:
            Subscription.publish = original

        return undo

    # --- what the runtime shows ------------------------------------------------------------------------
    def all_refusals(self) -> list[Refusal]:
        return self.refusals.all()

    def unused_actions(self) -> dict[str, list[str]]:
        """Role name -> granted actions none of its sessions used so far: candidates for a narrower grant.

        Only meaningful after a run that took every path (faults included); an action used on one
        resource counts as used on all.
        """
        from moto.iam.models import iam_backends

        used_by_role: dict[str, set[str]] = {}
        for principal, action in self.used:
            used_by_role.setdefault(principal_arn(principal).rsplit("/", 1)[-1], set()).add(action.lower())
        backend = iam_backends[self.account_id]["aws"]
        unused: dict[str, list[str]] = {}
        for role in backend.roles.values():
            granted: set[str] = set()
            for document in role.policies.values():
                parsed = json.loads(document) if isinstance(document, str) else document
                statements = parsed.get("Statement", [])
                for statement in statements if isinstance(statements, list) else [statements]:
                    if statement.get("Effect") == "Allow":
                        actions = statement.get("Action", [])
                        granted.update(actions if isinstance(actions, list) else [actions])
            left = sorted(a for a in granted if a.lower() not in used_by_role.get(role.name, set())
                          and not a.startswith(("logs:", "xray:")))
            if left:
                unused[role.name] = left
        return unused


def _replace_everywhere(package: str, original: Any, replacement: Any) -> list[Any]:
    modules = []
    for name, module in list(sys.modules.items()):
        if name.startswith(package) and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = replacement
            modules.append(module)
    return modules


__all__ = ["DeliveryRefusal", "IamEnforcement", "active"]
