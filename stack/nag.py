"""cdk-nag acknowledgements: one per finding, each with a reason a security reviewer can check.

cdk-nag 3 names an IAM5 finding after the wildcard it saw, with CloudFormation references
flattened (``Fn::GetAtt`` -> ``<LogicalId.Arn>``, ``Ref`` -> ``<AWS::Region>``). :func:`flatten`
does the same to the very value the stack grants, so an acknowledgement follows its resource and
never hard-codes a hashed logical ID.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk

if TYPE_CHECKING:
    from constructs import IConstruct

AWS_SOLUTIONS = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (``IAM5[Resource::*]``, ``S1``...) on ``scope`` and its children.

    Parameters
    ----------
    scope: IConstruct
        The narrowest construct that holds the finding (a role, a bucket, a queue).
    rule: str
        The rule without the pack prefix, with its finding in brackets where it has one.
    reason: str
        Why the finding is acceptable; recorded in the cloud assembly for audit.
    """
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{AWS_SOLUTIONS}-{rule}", reason=reason))


def acknowledge_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge the IAM5 finding for one wildcard resource value (an ARN with ``*`` in it)."""
    acknowledge(scope, wildcard_resource(flatten(scope, resource)), reason)


def acknowledge_objects(scope: IConstruct, bucket_arn: str, reason: str, prefix: str = "") -> None:
    """Acknowledge object-key wildcards (``<bucket ARN>/<prefix>*``) on one bucket."""
    acknowledge_resource(scope, f"{bucket_arn}/{prefix}*", reason)


def wildcard_resource(resource: str) -> str:
    """The IAM5 finding for a flattened resource, e.g. ``IAM5[Resource::<Bucket.Arn>/sync/*]``."""
    return f"IAM5[Resource::{resource}]"


def flatten(scope: IConstruct, value: Any) -> str:
    """Render a (possibly tokenised) value the way cdk-nag's ``flattenCfnReference`` does."""
    return _visit(cdk.Stack.of(scope).resolve(value))


def _visit(node: Any) -> str:
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(_visit(item) for item in items)
        if "Fn::Sub" in node:
            return _visit(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_visit(resource)}.{_visit(attribute)}>"
        if "Fn::ImportValue" in node:
            return _visit(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_visit(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
