"""Who acts in the embedded runtime: the operator, and each service through its own role.

* The **operator** is an IAM user with an administrator policy. The operator CLI, the tests and
  ``rekpipe local up``'s AWS CLI users act as it (in AWS: your own credentials).
* A **service role session** is an STS session of a role from the deployed template, taken only
  after the role's trust policy is checked to trust that service (``lambda.amazonaws.com`` for a
  function's role, ``states.amazonaws.com`` for the state machine's, ``rekognition.amazonaws.com``,
  ``batchoperations.s3.amazonaws.com``). A role that does not trust the service cannot be assumed,
  as in AWS ("Creating a role to delegate permissions to an AWS service", IAM User Guide).

Sessions are created in moto's STS backend directly: in AWS the service assumes the role, and no
identity of ours would be allowed to call ``sts:AssumeRole`` on a role that trusts only a service.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from botocore.credentials import Credentials

from rekpipe.emulator.iam.resource_policies import Decision, PolicyRequest, evaluate

OPERATOR_USER_NAME = "rekpipe-operator"
OPERATOR_ACCESS_KEY_ID = "AKIAREKPIPEOPERATOR1"
"""Fixed, so that ``rekpipe local up`` can print credentials for the AWS CLI (they work only locally)."""
OPERATOR_SECRET_ACCESS_KEY = "rekpipe-local-operator-secret-not-an-aws-key"  # works only on the local emulator
OPERATOR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "OperatorIsAdministrator", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}
SESSION_SECONDS = 12 * 3600


class AssumeRoleDeniedError(PermissionError):
    """A service may not assume a role: its trust policy does not allow that service."""

    def __init__(self, role_arn: str, service: str, decision: Decision) -> None:
        super().__init__(
            f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn} "
            f"({decision.value} in the role's trust policy); add {service} as a trusted principal of the role"
        )
        self.role_arn = role_arn
        self.service = service


@dataclass(frozen=True)
class RoleSession:
    """An assumed role: its ARN as callers see it, and credentials that sign as it."""

    role_arn: str
    session_name: str
    arn: str
    credentials: Credentials


class IdentityBroker:
    """Creates the operator and the service role sessions in moto's IAM and STS backends.

    Parameters
    ----------
    account_id, region: str
        The emulated account and region.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._sessions: dict[tuple[str, str, str], RoleSession] = {}
        self._lock = threading.Lock()
        self._known_keys: dict[str, bool] = {}

    @property
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account_id]["aws"]

    @property
    def _sts(self) -> Any:
        from moto.sts.models import sts_backends

        return sts_backends[self.account_id]["aws"]

    def operator(self) -> Credentials:
        """The operator user (created once per moto backend) and its fixed access key."""
        iam = self._iam
        try:
            user = iam.get_user(OPERATOR_USER_NAME)
        except Exception:
            user = iam.create_user(self.region, OPERATOR_USER_NAME)
            iam.put_user_policy(OPERATOR_USER_NAME, "Administrator", json.dumps(OPERATOR_POLICY))
        if not any(key.access_key_id == OPERATOR_ACCESS_KEY_ID for key in user.access_keys):
            key = iam.create_access_key(OPERATOR_USER_NAME)
            key.access_key_id = OPERATOR_ACCESS_KEY_ID
            key.secret_access_key = OPERATOR_SECRET_ACCESS_KEY
        return Credentials(OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY)

    def service_session(self, role_arn: str, service: str, *, session_name: str,
                        source_arn: str | None = None) -> RoleSession:
        """A session of ``role_arn`` taken by ``service``, after checking the role's trust policy.

        Raises
        ------
        AssumeRoleDeniedError
            The role does not exist or does not trust ``service`` (with these ``aws:SourceAccount``
            and ``aws:SourceArn`` values).
        """
        session_name = _session_name(session_name)
        key = (role_arn, service, session_name)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
            self._check_trust(role_arn, service, source_arn)
            assumed = self._sts.assume_role(region_name=self.region, role_session_name=session_name,
                                            role_arn=role_arn, policy=None, duration=SESSION_SECONDS,
                                            external_id=None)
            session = RoleSession(
                role_arn=role_arn, session_name=session_name, arn=assumed.arn,
                credentials=Credentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token),
            )
            self._sessions[key] = session
            return session

    def is_known(self, access_key_id: str) -> bool:
        """Whether moto issued this access key (to a user or an STS session); cached per key."""
        known = self._known_keys.get(access_key_id)
        if known is None:
            known = self.identity_arn(access_key_id) is not None
            self._known_keys[access_key_id] = known
        return known

    def identity_arn(self, access_key_id: str) -> str | None:
        """The ARN of the user or session that owns an access key (None if unknown)."""
        for assumed in self._sts.assumed_roles:
            if assumed.access_key_id == access_key_id:
                return str(assumed.arn)
        for user in self._iam.list_users("/", None, None):
            if any(key.access_key_id == access_key_id for key in user.access_keys):
                return f"arn:aws:iam::{self.account_id}:user/{user.name}"
        return None

    def _check_trust(self, role_arn: str, service: str, source_arn: str | None) -> None:
        try:
            role = self._iam.get_role_by_arn(role_arn)
        except Exception as error:
            raise AssumeRoleDeniedError(role_arn, service, Decision.IMPLICIT_DENY) from error
        context = {"aws:SourceAccount": self.account_id}
        if source_arn:
            context["aws:SourceArn"] = source_arn
        decision = evaluate(role.assume_role_policy_document,
                            PolicyRequest(action="sts:AssumeRole", service_principal=service, context=context))
        if decision is not Decision.ALLOW:
            raise AssumeRoleDeniedError(role_arn, service, decision)


def _session_name(name: str) -> str:
    """RoleSessionName allows 2-64 characters of ``[\\w+=,.@-]`` (STS API Reference, AssumeRole)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "+=,.@-_" else "-" for ch in name)
    return cleaned[:64] or "rekpipe"


__all__ = ["AssumeRoleDeniedError", "IdentityBroker", "RoleSession"]
