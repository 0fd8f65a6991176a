"""Which grants the pipeline really uses: a faulted run on the embedded runtime under IAM enforcement.

Run with ``python -m bench.iam_usage``. It uploads the generated samples, plus a corrupt image, with
throttling, failed jobs and lost notices injected, runs the reconciler, and writes
``bench/results/iam_usage.json``: every refusal (a missing grant) and, per role, the granted actions
no session used (candidates for a narrower policy; a path not taken here counts as unused).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3

from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions
from rekpipe.samples import generate
from rekpipe.simulator import SimulatorConfig
from rekpipe_shared.schema import TERMINAL_STATUSES
from rekpipe_shared.settings import PipelineSettings

RESULTS = Path(__file__).resolve().parent / "results" / "iam_usage.json"
SETTINGS = {"image_operations": "labels,moderation,text,faces", "video_operations": "labels,moderation,segments",
            "video_job_wait_seconds": 10, "video_slot_wait_seconds": 30, "video_job_limit_retry_seconds": 2}


def main() -> dict[str, object]:
    simulator = SimulatorConfig(seed=11, job_duration=(1.0, 3.0), throttle_rate=0.2, failed_job_rate=0.2,
                                lost_notice_rate=0.3)
    options = RuntimeOptions(settings=PipelineSettings.from_mapping(SETTINGS), simulator=simulator,
                             schedule_seconds=5)
    with EmbeddedRuntime(options) as runtime:
        s3 = boto3.client("s3")
        bucket = runtime.outputs["ContentBucketName"]
        keys = []
        for sample in generate(images=12, videos=4, seed=3):
            s3.put_object(Bucket=bucket, Key=sample.key, Body=sample.body)
            keys.append(sample.key)
        s3.put_object(Bucket=bucket, Key="broken/not-really.jpg", Body=b"\xff\xd8\xff garbage")
        table = boto3.client("dynamodb")
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            items = table.scan(TableName=runtime.outputs["TaskTableName"])["Items"]
            tasks = [item for item in items if "status" in item and "object_key" in item]
            if len(tasks) >= len(keys) + 1 and all(item["status"]["S"] in TERMINAL_STATUSES for item in tasks):
                break
            time.sleep(1)
        runtime.run_schedules_now()
        assert runtime.iam is not None
        result = {
            "refusals": sorted({refusal.message for refusal in runtime.iam.all_refusals()}),
            "delivery_refusals": sorted({delivery.message for delivery in runtime.iam.delivery_refusals}),
            "unused_actions_by_role": runtime.iam.unused_actions(),
            "tasks_final": sum(item["status"]["S"] in TERMINAL_STATUSES for item in tasks),
            "tasks": len(tasks),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
