"""cdk-nag acknowledgements: one per finding, each with a reason a security reviewer can check.

cdk-nag 3 names IAM5 findings after the wildcard they saw, with CloudFormation references written
as ``<LogicalId.Attribute>``; the helpers here build those names from the constructs themselves,
so an acknowledgement follows its resource and never hard-codes a hashed logical ID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk

if TYPE_CHECKING:
    from constructs import IConstruct

AWS_SOLUTIONS = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (``IAM5[Resource::*]``, ``S1``...) on ``scope`` and its children.

    Parameters
    ----------
    scope: IConstruct
        The narrowest construct that holds the finding (a role, a policy, a bucket).
    rule: str
        The rule without the pack prefix, with its finding in brackets where it has one.
    reason: str
        Why the finding is acceptable; recorded in the cloud assembly for audit.
    """
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{AWS_SOLUTIONS}-{rule}", reason=reason))


def ref(resource: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag writes ``Fn::GetAtt`` of a construct's CloudFormation resource: ``<LogicalId.Arn>``."""
    cfn = resource.node.default_child if not isinstance(resource, cdk.CfnElement) else resource
    if not isinstance(cfn, cdk.CfnElement):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource")
    return f"<{cdk.Stack.of(cfn).get_logical_id(cfn)}.{attribute}>"


def wildcard_resource(resource: str) -> str:
    """The IAM5 finding for a resource wildcard, e.g. ``IAM5[Resource::<Bucket.Arn>/sync/*]``."""
    return f"IAM5[Resource::{resource}]"


def wildcard_action(action: str) -> str:
    """The IAM5 finding for an action wildcard, e.g. ``IAM5[Action::s3:Abort*]``."""
    return f"IAM5[Action::{action}]"


def acknowledge_objects(scope: IConstruct, bucket: IConstruct, reason: str, prefix: str = "") -> None:
    """Acknowledge object-key wildcards (``<Bucket.Arn>/<prefix>*``) on one named bucket."""
    acknowledge(scope, wildcard_resource(f"{ref(bucket)}/{prefix}*"), reason)
