"""Resource-based and trust policies, for the calls moto's IAM-like access control never sees.

moto authorizes requests signed by a user or an assumed role against that identity's policies. It
does not evaluate resource-based policies (a TODO in ``moto/iam/access_control.py``), so nothing
checks a *service* acting on a resource: S3 invoking a function, SNS sending to a queue, EventBridge
invoking a target, or a service assuming a role. Those deliveries are allowed by resource policies
alone (a Lambda permission, a queue policy) and by the role's trust policy, so this module evaluates
exactly those documents, with the condition keys those services send (``aws:SourceArn``,
``aws:SourceAccount``, ``aws:SecureTransport``).

The evaluation follows "Policy evaluation logic" (IAM User Guide): an explicit Deny wins, then any
Allow, else an implicit deny. Supported condition operators: ``StringEquals``, ``StringLike``,
``StringNotEquals``, ``ArnEquals``, ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``, ``Bool``, the
``Numeric*`` family, each
optionally ``...IfExists``; condition keys are compared case-insensitively, as AWS does. An operator
outside that list makes its statement not match and is logged, so a policy this module cannot read
never grants access here.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

LOG = logging.getLogger("rekpipe.emulator.iam")


class Decision(Enum):
    """The outcome of evaluating one policy for one request."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class PolicyRequest:
    """What a service asks to do.

    Parameters
    ----------
    action: str
        ``service:Action``, e.g. ``sqs:SendMessage``.
    resource: str | None
        The resource ARN (None for trust policies, which have no Resource).
    service_principal: str | None
        The calling service, e.g. ``sns.amazonaws.com``.
    aws_principal: str | None
        The calling identity's ARN, when a user or role calls.
    context: dict[str, str]
        Condition keys and their values (``aws:SourceArn``...).
    """

    action: str
    resource: str | None = None
    service_principal: str | None = None
    aws_principal: str | None = None
    context: dict[str, str] = field(default_factory=dict)


def evaluate(policy: dict[str, Any] | str | None, request: PolicyRequest) -> Decision:
    """Evaluate one resource-based or trust policy document for ``request``."""
    if policy is None:
        return Decision.IMPLICIT_DENY
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not _statement_applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.EXPLICIT_DENY
        if statement.get("Effect") == "Allow":
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _statement_applies(statement: dict[str, Any], request: PolicyRequest) -> bool:
    if "Action" in statement:
        if not any(_matches(a, request.action, case_sensitive=False) for a in _listify(statement["Action"])):
            return False
    elif "NotAction" in statement and any(_matches(a, request.action, case_sensitive=False)
                                          for a in _listify(statement["NotAction"])):
        return False
    if request.resource is not None:
        if "Resource" in statement:
            if not any(_matches(r, request.resource) for r in _listify(statement["Resource"])):
                return False
        elif "NotResource" in statement and any(_matches(r, request.resource)
                                                for r in _listify(statement["NotResource"])):
            return False
    if not _principal_matches(statement.get("Principal"), request):
        return False
    return _conditions_hold(statement.get("Condition") or {}, request.context)


def principal_arn(caller_arn: str) -> str:
    """``aws:PrincipalArn`` of a caller: an assumed-role session is its role's ARN (IAM User Guide,
    "AWS global condition context keys"); a user is itself."""
    if ":assumed-role/" in caller_arn:
        account = caller_arn.split(":")[4]
        role = caller_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        return f"arn:aws:iam::{account}:role/{role}"
    return caller_arn


def _principal_matches(principal: Any, request: PolicyRequest) -> bool:
    if principal is None:
        return True  # an identity policy statement, or no principal element
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if request.service_principal and request.service_principal in _listify(principal.get("Service")):
        return True
    if request.aws_principal:
        for expected in _listify(principal.get("AWS")):
            if expected in ("*", request.aws_principal, principal_arn(request.aws_principal)):
                return True
            account = request.aws_principal.split(":")[4] if request.aws_principal.count(":") >= 5 else ""
            if expected in (account, f"arn:aws:iam::{account}:root"):
                return True
    return False


_OPERATORS = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringLike": lambda expected, actual: _matches(expected, actual),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": lambda expected, actual: _matches(expected, actual),
    "ArnNotEquals": lambda expected, actual: actual != expected,
    "ArnNotLike": lambda expected, actual: not _matches(expected, actual),
    "Bool": lambda expected, actual: str(actual).lower() == str(expected).lower(),
    "NumericEquals": lambda expected, actual: float(actual) == float(expected),
    "NumericNotEquals": lambda expected, actual: float(actual) != float(expected),
    "NumericLessThan": lambda expected, actual: float(actual) < float(expected),
    "NumericLessThanEquals": lambda expected, actual: float(actual) <= float(expected),
    "NumericGreaterThan": lambda expected, actual: float(actual) > float(expected),
    "NumericGreaterThanEquals": lambda expected, actual: float(actual) >= float(expected),
}
_NEGATED = {"StringNotEquals", "ArnNotEquals", "ArnNotLike"}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    lowered = {key.lower(): value for key, value in context.items()}
    for operator, clauses in conditions.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        test = _OPERATORS.get(base)
        if test is None:
            LOG.warning("condition operator %s is not evaluated by the emulator; the statement does not match",
                        operator)
            return False
        for key, expected_values in clauses.items():
            actual = lowered.get(key.lower())
            if actual is None:
                if if_exists:
                    continue
                return False
            expected = _listify(expected_values)
            results = [test(value, actual) for value in expected]
            if not (all(results) if base in _NEGATED else any(results)):
                return False
    return True


__all__ = ["Decision", "PolicyRequest", "evaluate", "principal_arn"]
