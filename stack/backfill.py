"""Backfill: the role S3 Batch Operations assumes to run ``ingest_batch`` over a manifest.

The job itself is created by the CLI from the stack's outputs; the stack provides the role, the
function and the bucket (with fixed prefixes) for manifests and completion reports. The role
needs no access to the objects being backfilled: ``ingest_batch`` reads them, not Batch Operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_iam as iam
from constructs import Construct

from stack.nag import acknowledge_objects, acknowledge_resource
from stack.permissions import object_statement
from stack.storage import BATCH_REPORT_PREFIX, INVENTORY_PREFIX, MANIFEST_PREFIX

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3


class Backfill(Construct):
    """The S3 Batch Operations role.

    Parameters
    ----------
    ingest_batch: lambda_.IFunction
        The function the job invokes for each manifest entry.
    manifest_bucket: s3.IBucket
        Holds CSV manifests (``manifests/``), S3 Inventory reports (``inventory/``) and the
        job's completion reports (``batch-reports/``).

    Attributes
    ----------
    role: iam.Role
    """

    def __init__(self, scope: Construct, id_: str, *, ingest_batch: lambda_.IFunction,
                 manifest_bucket: s3.IBucket) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "BatchOperationsRole",
            # The trust policy AWS documents for Batch Operations; the service does not promise to
            # send aws:SourceAccount, so a condition on it could stop every job from assuming the role.
            assumed_by=iam.ServicePrincipal("batchoperations.s3.amazonaws.com"),
            description="Assumed by S3 Batch Operations to run the pipeline's backfill jobs",
        )
        ingest_batch.grant_invoke(self.role)
        acknowledge_resource(
            self.role, f"{ingest_batch.function_arn}:*",
            "grant_invoke adds '<ingest_batch ARN>:*' so a job may name a version or alias of that one "
            "function; no other function is reachable.",
        )
        bucket_arn = manifest_bucket.bucket_arn
        reasons = {
            MANIFEST_PREFIX: "Batch Operations reads the CSV manifest of each job, whose key the CLI chooses per "
                             f"job, under {MANIFEST_PREFIX} only (GetObject/GetObjectVersion).",
            INVENTORY_PREFIX: "Batch Operations reads an S3 Inventory manifest.json and the CSV data files it lists, "
                              f"whose keys S3 Inventory chooses per report, under {INVENTORY_PREFIX} only.",
        }
        for prefix, reason in reasons.items():
            self.role.add_to_principal_policy(object_statement(["s3:GetObject", "s3:GetObjectVersion"],
                                                               bucket_arn, prefix))
            acknowledge_objects(self.role, bucket_arn, reason, prefix)
        self.role.add_to_principal_policy(object_statement(["s3:PutObject"], bucket_arn, BATCH_REPORT_PREFIX))
        acknowledge_objects(
            self.role, bucket_arn,
            f"Batch Operations writes completion reports under {BATCH_REPORT_PREFIX}<job id>/, a key it "
            "chooses per job; PutObject only, only under that prefix.",
            BATCH_REPORT_PREFIX,
        )
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[bucket_arn]))
