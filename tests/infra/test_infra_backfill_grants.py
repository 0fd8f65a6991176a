"""The keys the backfill CLI writes and reads are inside the Batch Operations role's grants.

The CLI takes every location from the stack's outputs; this test builds those locations from the
synthesized outputs and evaluates the role's synthesized policy for each key the job touches, so a
prefix changed on one side only fails here, not in a user's account.
"""

from __future__ import annotations

from typing import Any

from rekpipe.cli.backfill import BackfillLocations
from rekpipe.cli.stack import StackOutputs
from rekpipe.emulator.iam.resource_policies import Decision, PolicyRequest, evaluate

from .template_queries import resources, role_statements


def _resolve(value: Any) -> Any:
    """Intrinsics to stand-ins: a bucket's Ref is its logical id, its Arn ``arn:aws:s3:::<logical id>``."""
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return value["Ref"]
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"arn:aws:s3:::{logical_id}" if attribute == "Arn" else logical_id
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(part)) for part in parts)
    return {key: _resolve(v) for key, v in value.items()}


def _batch_role_policy(template: dict[str, Any]) -> dict[str, Any]:
    [role_id] = [lid for lid, res in resources(template, "AWS::IAM::Role").items()
                 if "batchoperations.s3.amazonaws.com" in str(res["Properties"]["AssumeRolePolicyDocument"])]
    return {"Statement": _resolve(role_statements(template, role_id))}


def _locations(template: dict[str, Any]) -> BackfillLocations:
    outputs = {key: str(_resolve(output["Value"])) for key, output in template["Outputs"].items()}
    return BackfillLocations.from_outputs(StackOutputs.from_outputs("RekognitionPipeline", outputs))


def test_backfill_cli_keys_fall_inside_the_batch_operations_role_grants(template):
    # GIVEN the locations the CLI derives from the stack's outputs, and the role's policy
    locations, policy = _locations(template), _batch_role_policy(template)
    bucket = locations.manifest_bucket

    def allowed(action: str, key: str) -> bool:
        request = PolicyRequest(action=action, resource=f"arn:aws:s3:::{bucket}/{key}")
        return evaluate(policy, request) is Decision.ALLOW

    # WHEN the job reads the CLI's CSV manifest or an inventory manifest, and writes its report
    manifest_key = locations.manifest_key("20261201T000000Z-photos.csv")
    inventory_key = f"{locations.inventory_prefix}photos/BackfillManifest/2026-12-01T00-00Z/manifest.json"
    report_keys = [f"{locations.report_prefix}/job-1234/manifest.json",
                   f"{locations.report_prefix}/job-1234/results/abc.csv"]

    # THEN each of those is allowed, with the version-pinned read too
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        assert allowed(action, manifest_key), manifest_key
        assert allowed(action, inventory_key), inventory_key
    assert all(allowed("s3:PutObject", key) for key in report_keys)
    locations.check_inventory(bucket, inventory_key)  # the CLI accepts what the role can read
    # AND the evaluation bites: the CLI's former prefixes were outside the grants
    assert not allowed("s3:GetObject", "backfill/manifests/20261201T000000Z-photos.csv")
    assert not allowed("s3:PutObject", "backfill/reports/job-1234/manifest.json")
    assert not allowed("s3:PutObject", manifest_key)


def test_backfill_lifecycle_rules_expire_what_the_cli_writes(template):
    # GIVEN the manifest bucket's lifecycle rules
    locations = _locations(template)
    bucket = resources(template, "AWS::S3::Bucket")[locations.manifest_bucket]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [rule["Prefix"] for rule in rules if rule.get("ExpirationInDays") and rule.get("Prefix")]

    # THEN the CLI's manifests, the inventory reports and the job reports each fall under an expiring prefix
    for key in (locations.manifest_key("m.csv"), f"{locations.inventory_prefix}x/manifest.json",
                f"{locations.report_prefix}/job-1/manifest.json"):
        assert any(key.startswith(prefix) for prefix in expiring), key
