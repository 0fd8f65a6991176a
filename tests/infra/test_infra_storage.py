"""Buckets and tables."""

from __future__ import annotations

from aws_cdk.assertions import Match

from rekpipe_shared.schema import ATTENTION_INDEX, IN_FLIGHT_INDEX, TASK_ID_ATTR

from .template_queries import getatt_id, mentions, resources


def _buckets(template):
    return resources(template, "AWS::S3::Bucket")


def _bucket_by_output(template, output):
    return template["Outputs"][output]["Value"]["Ref"]


def test_buckets_block_public_access_encrypt_and_disable_acls(synth):
    # GIVEN the synthesized stack
    buckets = _buckets(synth.json)
    # WHEN / THEN every one of the four buckets blocks public access, is encrypted and has ACLs disabled
    assert len(buckets) == 4
    synth.template.resource_count_is("AWS::S3::Bucket", 4)
    synth.template.all_resources_properties("AWS::S3::Bucket", {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": Match.string_like_regexp("AES256|aws:kms")}}]},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    })


def test_buckets_deny_insecure_transport(template):
    # GIVEN every bucket and every bucket policy
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    for bucket_id in _buckets(template):
        # WHEN its policy is found
        policy = next(p for p in policies if p["Properties"]["Bucket"] == {"Ref": bucket_id})
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        # THEN it denies every request without TLS, and TLS older than 1.2
        assert any(s["Effect"] == "Deny" and s["Action"] == "s3:*"
                   and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements), bucket_id
        assert any(s["Effect"] == "Deny" and "s3:TlsVersion" in s.get("Condition", {}).get("NumericLessThan", {})
                   for s in statements), bucket_id


def test_buckets_log_access_to_inventory_bucket(template):
    # GIVEN the inventory-and-logs bucket
    logs_bucket = _bucket_by_output(template, "InventoryBucketName")
    # WHEN the other buckets' logging is read
    others = {lid: b for lid, b in _buckets(template).items() if lid != logs_bucket}
    # THEN each sends server access logs there, and logging.s3 may write them (bucket policy, not ACLs)
    assert len(others) == 3
    for lid, bucket in others.items():
        logging = bucket["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": logs_bucket}, lid
        assert logging["LogFilePrefix"].startswith("access-logs/"), lid
    policy = next(p for p in resources(template, "AWS::S3::BucketPolicy").values()
                  if p["Properties"]["Bucket"] == {"Ref": logs_bucket})
    writers = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
               if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}]
    assert {getatt_id(s["Condition"]["ArnLike"]["aws:SourceArn"]) for s in writers} == set(others)


def test_buckets_retained_and_content_versioned(template):
    # GIVEN the buckets
    buckets = _buckets(template)
    # WHEN / THEN all are retained with the stack, and both content buckets are versioned
    assert all(b["DeletionPolicy"] == "Retain" and b["UpdateReplacePolicy"] == "Retain" for b in buckets.values())
    for output in ("ContentBucketName", "ExistingContentBucketName"):
        props = buckets[_bucket_by_output(template, output)]["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_inventory_bucket_expires_logs_and_receives_inventory(template):
    # GIVEN the inventory-and-logs bucket and the existing-content bucket
    logs_bucket = _bucket_by_output(template, "InventoryBucketName")
    rules = _buckets(template)[logs_bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    existing = _buckets(template)[_bucket_by_output(template, "ExistingContentBucketName")]["Properties"]
    # WHEN / THEN access logs expire, and the backfill source writes a CSV inventory (a Batch Operations manifest)
    assert any(r.get("Prefix") == "access-logs/" and r.get("ExpirationInDays") for r in rules)
    (inventory,) = existing["InventoryConfigurations"]
    assert inventory["Destination"]["Format"] == "CSV"
    assert getatt_id(inventory["Destination"]["BucketArn"]) == logs_bucket


def test_output_bucket_expiration_follows_setting(template, synth_with):
    # GIVEN the default settings (keep results) and a 30-day retention
    def expiring(tpl):
        output = _buckets(tpl)[_bucket_by_output(tpl, "OutputBucketName")]["Properties"]
        return [r for r in output["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]

    # WHEN both are synthesized
    kept, expired = expiring(template), expiring(synth_with(output_retention_days="30").json)
    # THEN only the second expires results, after 30 days
    assert kept == []
    assert [r["ExpirationInDays"] for r in expired] == [30]


def test_task_table_schema(synth):
    # GIVEN / WHEN the task table is found by its output
    # THEN it matches what rekpipe_shared.tasks expects, with PITR, encryption, stream and the sparse index
    synth.template.has_resource("AWS::DynamoDB::Table", {
        "DeletionPolicy": "Retain",
        "Properties": {
            "KeySchema": [{"AttributeName": TASK_ID_ATTR, "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "AttributeDefinitions": Match.array_with([
                {"AttributeName": "attention_status", "AttributeType": "S"},
                {"AttributeName": "updated_at", "AttributeType": "S"},
                {"AttributeName": "in_flight_status", "AttributeType": "S"},
            ]),
            "GlobalSecondaryIndexes": [{
                "IndexName": ATTENTION_INDEX,
                "KeySchema": [{"AttributeName": "attention_status", "KeyType": "HASH"},
                              {"AttributeName": "updated_at", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }, {
                # only PENDING, QUEUED and IN_PROGRESS tasks carry in_flight_status: stuck tasks without a scan
                "IndexName": IN_FLIGHT_INDEX,
                "KeySchema": [{"AttributeName": "in_flight_status", "KeyType": "HASH"},
                              {"AttributeName": "updated_at", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        },
    })


def test_slot_table_schema(synth):
    # GIVEN / WHEN / THEN the slot table: pk/sk, TTL, on demand, PITR, encrypted
    common = {"BillingMode": "PAY_PER_REQUEST",
              "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
              "SSESpecification": {"SSEEnabled": True},
              "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}}
    synth.template.has_resource_properties("AWS::DynamoDB::Table", {
        **common,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    })


def test_tables_named_in_outputs(template):
    # GIVEN the table outputs
    tables = resources(template, "AWS::DynamoDB::Table")
    # WHEN / THEN each names one of the four tables
    names = {template["Outputs"][o]["Value"]["Ref"]
             for o in ("TaskTableName", "SemaphoreTableName", "RateLimitTableName",
                       "ResultIndexTableName")}
    assert names == set(tables)
    assert not mentions(template["Outputs"], "index/*")
