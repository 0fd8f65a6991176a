"""IAM statements derived from the operation catalogue and the storage layout.

Rekognition actions come from :func:`rekpipe_shared.operations.iam_actions`, never a wildcard.
Actions that AWS lets us scope (a face collection, a Custom Labels project version) are scoped;
the rest of Rekognition's detection and job APIs have no resource type, so AWS requires ``*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from rekpipe_shared.operations import CATALOGUE, iam_actions, operation

if TYPE_CHECKING:
    from collections.abc import Iterable

    from constructs import Construct

REKOGNITION_STAR_REASON = (
    "Rekognition's Detect*/Start*/Get* APIs used here have no resource type (Service Authorization "
    "Reference), so AWS requires Resource '*'. The actions are listed one by one from the operation "
    "catalogue for the configured analyses only; collection and project-version APIs are scoped."
)


def rekognition_statements(
    scope: Construct,
    names: Iterable[str],
    *,
    images: bool = False,
    starts: bool = False,
    gets: bool = False,
    face_collection_id: str | None = None,
    custom_labels_project_version_arn: str | None = None,
) -> list[iam.PolicyStatement]:
    """The statements that allow exactly the Rekognition calls these analyses make.

    Parameters
    ----------
    names: Iterable[str]
        Analyses (``labels``, ``faces``...) as in the settings.
    images, starts, gets: bool
        Which APIs: the synchronous image API, the stored-video Start* or Get* API.
    face_collection_id, custom_labels_project_version_arn: str | None
        Scope for the APIs that work on a collection or a project version.
    """
    names = tuple(names)
    wanted = set(iam_actions(names, images=images, videos=starts or gets))
    starts_api = {f"rekognition:{op.video_start_api}" for op in CATALOGUE.values() if op.video_start_api}
    gets_api = {f"rekognition:{op.video_get_api}" for op in CATALOGUE.values() if op.video_get_api}
    if not starts:
        wanted -= starts_api
    if not gets:
        wanted -= gets_api
    stack = cdk.Stack.of(scope)
    scoped: dict[str, set[str]] = {}
    for name in names:
        op = operation(name)
        if op.requires is None:
            continue
        apis = {f"rekognition:{api}" for api in (op.image_api, op.video_start_api) if api} & wanted
        if not apis:
            continue
        if op.requires == "collection":
            if not face_collection_id:
                raise ValueError(f"{name} needs a face collection id")
            resource = stack.format_arn(service="rekognition", resource="collection",
                                        resource_name=face_collection_id)
        elif op.requires == "project_version":
            if not custom_labels_project_version_arn:
                raise ValueError(f"{name} needs a project version ARN")
            resource = custom_labels_project_version_arn
        else:
            raise ValueError(f"unknown resource kind {op.requires!r} for {name}")
        scoped.setdefault(resource, set()).update(apis)
        wanted -= apis
    statements = [
        iam.PolicyStatement(actions=sorted(apis), resources=[resource]) for resource, apis in scoped.items()
    ]
    if wanted:
        statements.insert(0, iam.PolicyStatement(actions=sorted(wanted), resources=["*"]))
    return statements


def object_statement(actions: Iterable[str], bucket_arn: str, prefix: str = "") -> iam.PolicyStatement:
    """Object-level access to ``prefix*`` of one bucket (``prefix`` ends with ``/`` or is empty)."""
    return iam.PolicyStatement(actions=sorted(actions), resources=[f"{bucket_arn}/{prefix}*"])


SERVICE_QUOTAS_ACTIONS = ("servicequotas:ListAWSDefaultServiceQuotas", "servicequotas:ListServiceQuotas")
SERVICE_QUOTAS_STAR_REASON = (
    "servicequotas:ListServiceQuotas and ListAWSDefaultServiceQuotas have no resource type (Service "
    "Authorization Reference, 'Actions, resources, and condition keys for Service Quotas'), so AWS requires "
    "Resource '*'; they only read quota values, and the function asks for service code rekognition only."
)


def service_quotas_statement() -> iam.PolicyStatement:
    """Read the account's Rekognition quotas (``rekpipe_shared.quotas``): list-only, read-only actions."""
    return iam.PolicyStatement(actions=list(SERVICE_QUOTAS_ACTIONS), resources=["*"])
