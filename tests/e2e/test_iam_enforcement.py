"""IAM enforcement is live: remove one grant from the synthesized stack and the local run fails where AWS would.

Each test deploys the template with a single grant removed, drives the pipeline through its real entry
points, and asserts the status and the AccessDenied message a person would see on the object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe.emulator.batch_operations import BatchJobSpec, BatchOperationsRunner, ManifestLocation, ReportSpec
from rekpipe.samples import jpeg_bytes, mp4_bytes
from rekpipe_shared.tasks import TaskTable, task_id_for
from tests.support.runtime import wait_final

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.emulator.runtime import EmbeddedRuntime



def remove_grant(role_fragment: str, actions: set[str], *, resource_fragment: str = "") -> Callable[[dict], None]:
    """A template mutator that drops ``actions`` from the policies of the role whose logical id has ``role_fragment``.

    Only statements whose resources mention ``resource_fragment`` lose the actions; a statement left with no
    action is removed. The mutator asserts that it removed something, so a renamed role fails the test loudly.
    """

    def mutate(template: dict[str, Any]) -> None:
        removed = 0
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            roles = [ref.get("Ref", "") for ref in resource["Properties"].get("Roles", []) if isinstance(ref, dict)]
            if not any(role_fragment in role for role in roles):
                continue
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            for statement in list(statements):
                if resource_fragment and resource_fragment.lower() not in str(statement.get("Resource")).lower():
                    continue
                listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                kept = [action for action in listed if action not in actions]
                removed += len(listed) - len(kept)
                if kept:
                    statement["Action"] = kept
                else:
                    statements.remove(statement)
        assert removed, f"no {actions} grant found for a role like {role_fragment!r}"

    return mutate


@pytest.fixture
def runtime_without(make_runtime) -> Callable[[Callable[[dict], None]], EmbeddedRuntime]:
    """A runtime (``make_runtime``'s defaults, tests/conftest.py) deployed from the template a mutator changed."""
    return lambda mutator: make_runtime(template_mutator=mutator)


@pytest.mark.e2e
def test_enforcement_image_function_without_get_object_fails_the_image_with_access_denied(runtime_without):
    # GIVEN the stack with analyze_image's s3:GetObject on the content buckets removed
    runtime = runtime_without(remove_grant("AnalyzeImage", {"s3:GetObject", "s3:GetObjectVersion"},
                                           resource_fragment="contentbucket"))
    bucket = runtime.outputs["ContentBucketName"]
    table = TaskTable(runtime.outputs["TaskTableName"])

    # WHEN a photo is uploaded
    version = boto3.client("s3").put_object(Bucket=bucket, Key="denied/photo.jpg", Body=jpeg_bytes(1))["VersionId"]

    # THEN Rekognition, reading S3 as the caller, is refused, and the task says which grant is missing
    task = wait_final(table, task_id_for(bucket, "denied/photo.jpg", version, None), timeout=90)
    assert task["status"] == "FAILED"
    assert task["error_code"] == "AccessDeniedException"
    message = task["error_message"]
    assert "is not authorized to perform: s3:GetObject" in message
    assert f"arn:aws:s3:::{bucket}/denied/photo.jpg" in message
    assert "AnalyzeImageRole" in message  # the role, and the session Lambda names after the function (64 chars)
    assert runtime.function_name("analyze_image")[:64] in message
    # AND `rekpipe status` lists it among the latest failures, with the same reason
    from rekpipe.cli.stack import GlobalOptions
    from rekpipe.cli.status import do_cli as status

    [failure] = status(GlobalOptions(), failures=5).failures
    assert failure.error_code == "AccessDeniedException" and "s3:GetObject" in failure.error_message


@pytest.mark.e2e
def test_enforcement_batch_role_without_manifest_read_fails_the_job(runtime_without):
    # GIVEN the stack with the Batch Operations role's read of the manifest prefix removed
    runtime = runtime_without(remove_grant("BatchOperationsRole", {"s3:GetObject", "s3:GetObjectVersion"},
                                           resource_fragment="manifests/"))
    outputs = runtime.outputs
    bucket, prefix = outputs["ManifestBucketName"], outputs["ManifestPrefix"]
    source = outputs["ExistingContentBucketName"]
    boto3.client("s3").put_object(Bucket=source, Key="old/one.jpg", Body=jpeg_bytes(2))
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}job.csv", Body=f"{source},old/one.jpg\n".encode())

    # WHEN S3 Batch Operations runs a job over that manifest with the stack's role
    summary = BatchOperationsRunner(concurrency=2).run(BatchJobSpec(
        function_arn=outputs["IngestBatchFunctionArn"], manifest=ManifestLocation(bucket, f"{prefix}job.csv"),
        report=ReportSpec(bucket, outputs["BatchReportPrefix"].rstrip("/")),
        role_arn=outputs["BatchOperationsRoleArn"]))

    # THEN the job fails on the manifest, naming the action, the resource and the role, and no task is written
    assert summary.status == "Failed"
    [reason] = [r["FailureReason"] for r in summary.failure_reasons if r["FailureCode"] == "ManifestError"]
    assert "AccessDenied" in reason and "s3:GetObject" in reason and f"{bucket}/{prefix}job.csv" in reason
    assert "BatchOperationsRole" in reason
    assert sum(TaskTable(outputs["TaskTableName"]).counts().values()) == 0


@pytest.mark.e2e
def test_enforcement_dispatcher_without_pass_role_fails_the_video_with_access_denied(runtime_without):
    # GIVEN the stack with slot_dispatcher's iam:PassRole of the Rekognition notification role removed
    runtime = runtime_without(remove_grant("SlotDispatcher", {"iam:PassRole"}))
    bucket = runtime.outputs["ContentBucketName"]
    table = TaskTable(runtime.outputs["TaskTableName"])

    # WHEN a video is uploaded
    version = boto3.client("s3").put_object(Bucket=bucket, Key="denied/clip.mp4", Body=mp4_bytes(1))["VersionId"]

    # THEN Rekognition refuses the Start* call that passes the role, and the task says so
    task = wait_final(table, task_id_for(bucket, "denied/clip.mp4", version, None), timeout=90)
    assert task["status"] == "FAILED"
    details = str(task.get("operation_errors")) + str(task.get("error_message"))
    assert "AccessDeniedException" in details
    assert "iam:PassRole" in details and runtime.outputs["RekognitionRoleArn"] in details
    # AND no job was started, so no slot is held
    assert runtime.simulator is not None and runtime.simulator.jobs == {}
