"""Result reuse on the embedded runtime, IAM enforced: every new call (HeadObject with ChecksumMode,
CopyObject, the result index) runs with the function's own synthesized role."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe.samples import jpeg_bytes, mp4_bytes
from rekpipe.simulator import SimulatorConfig
from rekpipe_shared.settings import PipelineSettings
from rekpipe_shared.tasks import TaskTable, task_id_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rekpipe.emulator.runtime import EmbeddedRuntime

pytestmark = pytest.mark.e2e

SETTINGS = {"image_operations": "labels", "video_operations": "labels,moderation", "video_job_wait_seconds": 30,
            "video_slot_wait_seconds": 60, "video_job_limit_retry_seconds": 2}
FINAL = ("SUCCEEDED", "FAILED", "PARTIAL")


@pytest.fixture
def runtime(aws_env) -> Iterator[EmbeddedRuntime]:
    from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions

    started = EmbeddedRuntime(RuntimeOptions(settings=PipelineSettings.from_mapping(SETTINGS),
                                             simulator=SimulatorConfig(seed=3, job_duration=(0.5, 1.0)),
                                             schedule_seconds=3600))
    yield started.start()
    started.stop()


def _upload(runtime: EmbeddedRuntime, bucket: str, key: str, body: bytes) -> str:
    version = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return task_id_for(bucket, key, version, None)


def _wait_final(table: TaskTable, task_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = table.get(task_id) or {}
        if task.get("status") in FINAL:
            return task
        assert time.monotonic() < deadline, f"task never reached a final status: {task}"
        time.sleep(0.25)


def test_reuse_runtime_identical_image_and_video_pay_once_and_status_shows_the_saving(runtime):
    # GIVEN an image and a video already analysed once
    bucket = runtime.outputs["ContentBucketName"]
    table = TaskTable(runtime.outputs["TaskTableName"])
    sim = runtime.simulator
    assert sim is not None
    image, video = jpeg_bytes(51, (120, 100)), mp4_bytes(2)
    first_image = _wait_final(table, _upload(runtime, bucket, "a/photo.jpg", image))
    first_video = _wait_final(table, _upload(runtime, bucket, "a/clip.mp4", video))
    assert first_image["status"] == first_video["status"] == "SUCCEEDED"
    jobs_before = len(sim.jobs)

    # WHEN the same bytes are uploaded under other keys
    second_image = _wait_final(table, _upload(runtime, bucket, "b/copy.jpg", image))
    second_video = _wait_final(table, _upload(runtime, bucket, "b/copy.mp4", video))

    # THEN both SUCCEEDED from the stored results, with no IAM refusal on the way
    assert second_image["status"] == "SUCCEEDED", second_image
    assert second_video["status"] == "SUCCEEDED", second_video
    assert sim.stats.calls["DetectLabels"] == 1
    assert second_image["reused"]["DetectLabels"]["source_task_id"] == first_image["task_id"]
    # AND the reused video started no job and no execution (so it never took a slot)
    assert len(sim.jobs) == jobs_before == 2
    assert sim.stats.calls["StartLabelDetection"] == sim.stats.calls["StartContentModeration"] == 1
    assert "execution_arn" not in second_video
    assert set(second_video["reused"]) == {"StartLabelDetection", "StartContentModeration"}
    s3 = boto3.client("s3")
    out = runtime.outputs["OutputBucketName"]
    for api in second_video["reused"]:
        copy_uri, source_uri = second_video["outputs"][api], first_video["outputs"][api]
        assert copy_uri != source_uri
        read = [s3.get_object(Bucket=out, Key=uri.split(f"s3://{out}/", 1)[1])["Body"].read()
                for uri in (copy_uri, source_uri)]
        assert read[0] == read[1]
    # AND `rekpipe status` counts the two objects reused and the list price saved
    from rekpipe.cli.stack import GlobalOptions
    from rekpipe.cli.status import do_cli as status

    reuse = status(GlobalOptions()).reuse
    assert reuse["reused_objects"] == 2 and reuse["reused_operations"] == 3
    assert reuse["saved_usd"] > 0.001  # $0.001 for the image, plus the video's minutes at $0.10 per operation
