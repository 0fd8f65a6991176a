"""Buckets and tables: where objects come from, where results go, and the pipeline's state.

Removal policies: the buckets and the task table hold data a person cares about (uploads,
results, manifests, reports, logs, the record of what was analysed and billed), so they are
RETAINED when the stack is deleted. The slot (``SemaphoreTable``) and rate-limit tables hold only
short-lived coordination state (slot holders and waiters, per-second call counts with a TTL) that means nothing without the stack's
state machine, so they are DESTROYED with it. The result index is DESTROYED too: it only points at
results in the (retained) output bucket, and losing it costs a second analysis, never a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from rekpipe_shared.schema import (
    ATTENTION_ATTR,
    ATTENTION_INDEX,
    IN_FLIGHT_ATTR,
    IN_FLIGHT_INDEX,
    RATE_KEY_ATTR,
    REUSE_KEY_ATTR,
    SLOT_PK_ATTR,
    SLOT_SK_ATTR,
    TASK_ID_ATTR,
    TTL_ATTR,
    UPDATED_AT_ATTR,
)
from stack.nag import acknowledge

if TYPE_CHECKING:
    from collections.abc import Iterable

ACCESS_LOG_PREFIX = "access-logs/"
MANIFEST_PREFIX = "manifests/"
"""Where the backfill CLI uploads CSV manifests (in the inventory-and-logs bucket)."""
INVENTORY_PREFIX = "inventory/"
"""Where S3 Inventory reports of the existing-content bucket land."""
BATCH_REPORT_PREFIX = "batch-reports/"
"""Where S3 Batch Operations writes completion reports."""


ACCESS_LOG_DAYS = 90
REPORT_DAYS = 365
INVENTORY_DAYS = 30

# DynamoDB actions by need; TransactWriteItems is authorised per item action inside it.
READ_ITEM = ("dynamodb:GetItem",)
QUERY = ("dynamodb:Query",)
PUT_ITEM = ("dynamodb:PutItem",)
UPDATE_ITEM = ("dynamodb:UpdateItem",)
DELETE_ITEM = ("dynamodb:DeleteItem",)
CONDITION_CHECK = ("dynamodb:ConditionCheckItem",)


class Storage(Construct):
    """Four buckets and four tables (tasks, slots, Get* rate counters, result index).

    Every bucket blocks public access, is encrypted (SSE-S3: server access logs cannot be written
    to SSE-KMS, and Rekognition reads SSE-S3 objects with no key grants), denies non-TLS and
    TLS < 1.2 requests, disables ACLs and logs access to the inventory-and-logs bucket.

    Parameters
    ----------
    output_retention_days: int
        Days before results in the output bucket expire; 0 keeps them.

    Attributes
    ----------
    content_bucket, existing_content_bucket, inventory_bucket, output_bucket: s3.Bucket
    task_table, semaphore_table, rate_limit_table: dynamodb.Table
    result_index_table: dynamodb.Table
        Stored results by (content identity, operation, options): ``rekpipe_shared.result_index``.
    """

    def __init__(self, scope: Construct, id_: str, *, output_retention_days: int) -> None:
        super().__init__(scope, id_)
        abort_uploads = s3.LifecycleRule(id="AbortIncompleteUploads",
                                         abort_incomplete_multipart_upload_after=cdk.Duration.days(7))
        self.inventory_bucket = self._bucket(
            "InventoryAndLogsBucket",
            versioned=False,
            log_prefix=None,
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(id="ExpireAccessLogs", prefix=ACCESS_LOG_PREFIX,
                                 expiration=cdk.Duration.days(ACCESS_LOG_DAYS)),
                s3.LifecycleRule(id="ExpireBatchReports", prefix=BATCH_REPORT_PREFIX,
                                 expiration=cdk.Duration.days(REPORT_DAYS)),
                s3.LifecycleRule(id="ExpireManifests", prefix=MANIFEST_PREFIX,
                                 expiration=cdk.Duration.days(REPORT_DAYS)),
                s3.LifecycleRule(id="ExpireInventoryReports", prefix=INVENTORY_PREFIX,
                                 expiration=cdk.Duration.days(INVENTORY_DAYS)),
            ],
        )
        acknowledge(
            self.inventory_bucket, "S1",
            "This bucket is the server access log target of every other bucket in the stack; logging "
            "it to itself would log its own log deliveries. Its objects are logs, manifests and reports "
            "written by S3, S3 Inventory and Batch Operations.",
        )
        self.content_bucket = self._bucket("ContentBucket", versioned=True, log_prefix="content/",
                                           lifecycle_rules=[abort_uploads])
        self.existing_content_bucket = self._bucket(
            "ExistingContentBucket", versioned=True, log_prefix="existing-content/",
            lifecycle_rules=[abort_uploads],
            inventories=[
                s3.Inventory(
                    destination=s3.InventoryDestination(bucket=self.inventory_bucket, prefix=INVENTORY_PREFIX.rstrip("/")),
                    frequency=s3.InventoryFrequency.WEEKLY,
                    format=s3.InventoryFormat.CSV,  # the format Batch Operations takes as a manifest
                    include_object_versions=s3.InventoryObjectVersion.CURRENT,
                    optional_fields=["Size", "ETag", "LastModifiedDate"],
                    inventory_id="BackfillManifest",
                )
            ],
        )
        output_rules = [abort_uploads]
        if output_retention_days > 0:
            output_rules.append(s3.LifecycleRule(id="ExpireResults",
                                                 expiration=cdk.Duration.days(output_retention_days)))
        self.output_bucket = self._bucket("OutputBucket", versioned=False, log_prefix="output/",
                                          lifecycle_rules=output_rules)

        self.task_table = dynamodb.Table(
            self,
            "TaskTable",
            partition_key=dynamodb.Attribute(name=TASK_ID_ATTR, type=dynamodb.AttributeType.STRING),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            # Only the stream's batch markers expire (rekpipe_shared.status_counts); tasks never set it.
            time_to_live_attribute=TTL_ATTR,
            **_table_defaults(cdk.RemovalPolicy.RETAIN),
        )
        self.task_table.add_global_secondary_index(
            index_name=ATTENTION_INDEX,
            partition_key=dynamodb.Attribute(name=ATTENTION_ATTR, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=UPDATED_AT_ATTR, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.task_table.add_global_secondary_index(
            index_name=IN_FLIGHT_INDEX,
            partition_key=dynamodb.Attribute(name=IN_FLIGHT_ATTR, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=UPDATED_AT_ATTR, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.semaphore_table = dynamodb.Table(
            self,
            "SemaphoreTable",
            partition_key=dynamodb.Attribute(name=SLOT_PK_ATTR, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SLOT_SK_ATTR, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=TTL_ATTR,
            **_table_defaults(cdk.RemovalPolicy.DESTROY),
        )
        # Per-API, per-second Get* call counters shared by every function that calls Get*
        # (rekpipe_shared.get_calls); one-second items that expire by TTL.
        self.rate_limit_table = dynamodb.Table(
            self,
            "RateLimitTable",
            partition_key=dynamodb.Attribute(name=RATE_KEY_ATTR, type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=TTL_ATTR,
            **_table_defaults(cdk.RemovalPolicy.DESTROY),
        )
        self.result_index_table = dynamodb.Table(
            self,
            "ResultIndexTable",
            partition_key=dynamodb.Attribute(name=REUSE_KEY_ATTR, type=dynamodb.AttributeType.STRING),
            **_table_defaults(cdk.RemovalPolicy.DESTROY),
        )

    @property
    def content_buckets(self) -> tuple[s3.Bucket, s3.Bucket]:
        """The buckets whose objects are analysed: uploads and the backfill source."""
        return (self.content_bucket, self.existing_content_bucket)

    def _bucket(self, id_: str, *, versioned: bool, log_prefix: str | None,
                lifecycle_rules: list[s3.LifecycleRule], inventories: list[s3.Inventory] | None = None) -> s3.Bucket:
        logging = {}
        if log_prefix is not None:
            logging = {"server_access_logs_bucket": self.inventory_bucket,
                       "server_access_logs_prefix": f"{ACCESS_LOG_PREFIX}{log_prefix}"}
        return s3.Bucket(
            self,
            id_,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            lifecycle_rules=lifecycle_rules,
            inventories=inventories,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            **logging,
        )


def _table_defaults(removal_policy: cdk.RemovalPolicy) -> dict:
    return {
        "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
        "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        "encryption": dynamodb.TableEncryption.AWS_MANAGED,
        "removal_policy": removal_policy,
    }


def grant_table(grantee: iam.IGrantable, table: dynamodb.ITable, actions: Iterable[str], *,
                indexes: Iterable[str] = ()) -> iam.Grant:
    """Item-level actions on one table (and named indexes only), never ``index/*``.

    ``Table.grant`` would add ``<table>/index/*`` for every table that has an index.
    """
    resources = [table.table_arn, *(f"{table.table_arn}/index/{index}" for index in indexes)]
    return iam.Grant.add_to_principal(grantee=grantee, actions=sorted(set(actions)), resource_arns=resources)
