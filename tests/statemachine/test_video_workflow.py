"""The synthesized video state machine, executed by moto's interpreter with our real handlers.

Each test deploys the stack into the embedded runtime (in-process moto), uploads a video to the
content bucket and lets the pipeline run: ingest, stream, route, start_video_workflow, the
execution, the simulator's SNS notice, job_completed, collection, outcome.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from rekpipe.samples import mp4_bytes
from rekpipe.simulator import SimulatorConfig
from rekpipe_shared.settings import PipelineSettings
from tests.support.runtime import (
    RuntimeDefaults,
    entered_states,
    execution_history,
    list_keys,
    read_json,
    run_prefix,
    slot_holders,
    tasks,
    upload,
    wait_for_tasks,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from rekpipe.emulator.runtime import EmbeddedRuntime

FAST = {"video_slot_wait_seconds": 60, "video_job_wait_seconds": 60, "video_job_limit_retry_seconds": 1}


@pytest.fixture
def runtime_defaults() -> RuntimeDefaults:
    """``make_runtime`` (tests/conftest.py) starts from these: jobs of half a second."""
    return RuntimeDefaults(settings=FAST, simulator={"seed": 3, "job_duration": (0.5, 0.5)})


def _final_status(execution_arn: str, timeout: float = 60.0) -> str:
    """The execution's status once it has left RUNNING (the outcome is recorded a state before the end)."""
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout
    status = "RUNNING"
    while time.monotonic() < deadline:
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING":
            break
        time.sleep(0.05)
    return status


def test_video_workflow_happy_path_three_operations(make_runtime):
    # GIVEN a pipeline asked for labels, moderation and segments on every video
    runtime = make_runtime({"video_operations": "labels,moderation,segments"})

    # WHEN a video is uploaded
    task_id = upload(runtime, "videos/holiday clip.mp4", mp4_bytes(1))
    task = wait_for_tasks(runtime, [task_id])[task_id]

    # THEN the execution succeeded through one RunJob wait per operation and the collection
    assert task["status"] == "SUCCEEDED", task
    assert _final_status(task["execution_arn"]) == "SUCCEEDED"
    states = entered_states(execution_history(task["execution_arn"]))
    for state in ("ValidateInput", "RunJob", "CollectResults", "RecordOutcome"):
        assert state in states
    assert states.count("RunJob") == 3  # one want each, every notice arrived
    # AND each operation's pages and summary are in the output bucket, with the manifest
    output = runtime.outputs["OutputBucketName"]
    prefix = run_prefix(task)
    assert prefix == (f"async/{runtime.outputs['ContentBucketName']}/videos/holiday clip.mp4/"
                      f"version-{task['version_id']}/run-001/")
    for folder in ("LabelDetection", "ContentModeration", "SegmentDetection"):
        keys = list_keys(output, f"{prefix}{folder}/")
        assert f"{prefix}{folder}/page-00001.json" in keys
        assert f"{prefix}{folder}/summary.json" in keys
    labels = read_json(output, f"{prefix}LabelDetection/summary.json")
    assert labels["labels"] and labels["labels"][0]["time_ranges_ms"]
    segments = read_json(output, f"{prefix}SegmentDetection/summary.json")
    assert set(segments["segment_counts"]) <= {"SHOT", "TECHNICAL_CUE"}
    manifest = read_json(output, f"{prefix}manifest.json")
    assert manifest["status"] == "SUCCEEDED"
    assert set(manifest["outputs"]) == {"StartLabelDetection", "StartContentModeration", "StartSegmentDetection"}
    # AND every slot is free again
    assert slot_holders(runtime) == {}


def test_video_workflow_failed_job_gives_partial(make_runtime):
    # GIVEN a pipeline whose jobs are completed by hand
    runtime = make_runtime({"video_operations": "labels,moderation"}, job_duration=None)
    sim = runtime.simulator

    def complete_jobs() -> None:
        for job in list(sim.jobs.values()):
            if job.status == "IN_PROGRESS":
                failed = job.operation == "StartContentModeration"
                sim.complete_job(
                    job.job_id, "FAILED" if failed else "SUCCEEDED", "Unsupported codec: simulated" if failed else None
                )

    # WHEN the moderation job fails and the labels job succeeds
    task_id = upload(runtime, "videos/partly.mp4", mp4_bytes(2))
    task = wait_for_tasks(runtime, [task_id], during=complete_jobs)[task_id]

    # THEN the video is PARTIAL, with the failure's reason and the labels kept
    assert task["status"] == "PARTIAL"
    assert task["operation_errors"]["StartContentModeration"]["code"] == "JobFailedError"
    assert "Unsupported codec" in task["operation_errors"]["StartContentModeration"]["message"]
    assert set(task["outputs"]) == {"StartLabelDetection"}
    assert _final_status(task["execution_arn"]) == "SUCCEEDED"  # the outcome is recorded a state before the end
    assert slot_holders(runtime) == {}


def _ticking(runtime: EmbeddedRuntime, every: float = 1.0) -> Callable[[], None]:
    """A ``during`` callback that fires the schedules (the slot tick) at most once per ``every`` seconds."""
    last = [0.0]

    def tick() -> None:
        if time.monotonic() - last[0] >= every:
            last[0] = time.monotonic()
            runtime.run_schedules_now()

    return tick


def test_video_workflow_lost_notice_is_recovered_by_the_tick(make_runtime):
    # GIVEN a simulator that loses every completion notice
    runtime = make_runtime({"video_operations": "labels"}, lost_notice_rate=1.0)

    # WHEN a video is analysed while the slot tick runs
    task_id = upload(runtime, "videos/quiet.mp4", mp4_bytes(3))
    task = wait_for_tasks(runtime, [task_id], timeout=60, during=_ticking(runtime))[task_id]

    # THEN the tick's Get* found the job finished, resumed the one RunJob wait, and the video SUCCEEDED
    assert task["status"] == "SUCCEEDED"
    history = execution_history(task["execution_arn"])
    assert entered_states(history).count("RunJob") == 1
    assert runtime.simulator.lost_notices
    assert slot_holders(runtime) == {}


def test_video_workflow_duplicate_notice_is_ignored(make_runtime):
    # GIVEN a video analysed to the end
    runtime = make_runtime({"video_operations": "labels"})
    task_id = upload(runtime, "videos/twice.mp4", mp4_bytes(4))
    task = wait_for_tasks(runtime, [task_id])[task_id]
    [job] = runtime.simulator.jobs.values()
    before = len(runtime.adapter.invocations_of(runtime.function_name("job_completed")))

    # WHEN SNS delivers the same notice again
    runtime.simulator.publish_notice(job.job_id)
    deadline = time.monotonic() + 10
    while len(runtime.adapter.invocations_of(runtime.function_name("job_completed"))) == before:
        assert time.monotonic() < deadline, "the duplicate notice was never delivered"
        time.sleep(0.05)

    # THEN job_completed handled it without error and nothing changed
    last = runtime.adapter.invocations_of(runtime.function_name("job_completed"))[-1]
    assert not last.is_error
    from tests.support.runtime import tasks

    assert tasks(runtime).get(task_id)["status"] == task["status"] == "SUCCEEDED"
    assert entered_states(execution_history(task["execution_arn"])).count("RunJob") == 1
    assert slot_holders(runtime) == {}


def _collector_timeout(seconds: int) -> Callable[[dict[str, Any]], None]:
    """A template mutator giving collect_results a ``seconds`` timeout."""
    def mutate(template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            props = resource.get("Properties", {})
            variables = (props.get("Environment") or {}).get("Variables") or {}
            if resource["Type"] == "AWS::Lambda::Function" and variables.get("POWERTOOLS_SERVICE_NAME") == "collect_results":
                props["Timeout"] = seconds
    return mutate


def test_video_workflow_results_span_pages_and_collection_resumes(make_runtime):
    # GIVEN 2,500 label detections (three Get* pages) and a collector whose timeout (60 s) leaves less than its
    # 60 s reserve after any page, so it pauses after each one
    runtime = make_runtime({"video_operations": "labels"}, template_mutator=_collector_timeout(60),
                           video_result_items=2500)

    # WHEN the video is analysed
    task_id = upload(runtime, "videos/long.mp4", mp4_bytes(5))
    task = wait_for_tasks(runtime, [task_id])[task_id]

    # THEN three pages were written over three CollectResults runs, and the summary counts all items
    assert task["status"] == "SUCCEEDED"
    states = entered_states(execution_history(task["execution_arn"]))
    assert states.count("CollectResults") == 3
    output = runtime.outputs["OutputBucketName"]
    prefix = run_prefix(task) + "LabelDetection/"
    assert {k.rsplit("/", 1)[-1] for k in list_keys(output, prefix)} == {
        "page-00001.json",
        "page-00002.json",
        "page-00003.json",
        "summary.json",
    }
    assert len(read_json(output, prefix + "page-00001.json")["Labels"]) == 1000
    assert read_json(output, prefix + "summary.json")["items"] == 2500


def test_video_workflow_limit_exceeded_then_success(make_runtime):
    # GIVEN another workload holding the account's only concurrent-job slot
    runtime = make_runtime({"video_operations": "labels"}, max_concurrent_jobs=1, job_duration=None)
    bucket = runtime.outputs["ExistingContentBucketName"]  # not watched: the job is not the pipeline's
    boto3.client("s3").put_object(Bucket=bucket, Key="other/workload.mp4", Body=mp4_bytes(9))
    foreign = boto3.client("rekognition").start_label_detection(
        Video={"S3Object": {"Bucket": bucket, "Name": "other/workload.mp4"}}
    )["JobId"]

    # WHEN the dispatcher's start of our job meets LimitExceededException, and the other job later finishes
    task_id = upload(runtime, "videos/patient.mp4", mp4_bytes(6))
    # (the refusal is the simulator's record of it; the slot it was granted goes back at once, so it cannot be seen)
    deadline = time.monotonic() + 60
    while not runtime.simulator.stats.errors.get("StartLabelDetection", {}).get("LimitExceededException"):
        assert time.monotonic() < deadline, "our operation never got a slot, so no start was refused"
        time.sleep(0.05)
    assert [j.job_id for j in runtime.simulator.jobs.values()] == [foreign]  # refused: no job of ours yet
    runtime.simulator.complete_job(foreign, "SUCCEEDED")
    tick = _ticking(runtime)

    def complete_ours() -> None:
        tick()
        for job in list(runtime.simulator.jobs.values()):
            if job.status == "IN_PROGRESS" and job.job_id != foreign:
                runtime.simulator.complete_job(job.job_id, "SUCCEEDED")

    task = wait_for_tasks(runtime, [task_id], during=complete_ours)[task_id]

    # THEN the start was retried by the dispatcher while the slot was held, the execution waited in one
    # RunJob state without a retry of its own, and the video SUCCEEDED
    assert task["status"] == "SUCCEEDED"
    history = execution_history(task["execution_arn"])
    assert entered_states(history).count("RunJob") == 1
    assert not [e for e in history if e["type"] == "TaskFailed"]
    assert slot_holders(runtime) == {}


def test_video_workflow_aborted_execution_keeps_its_slot_until_its_job_ends(make_runtime):
    # GIVEN a video whose job runs until completed by hand, holding a slot
    runtime = make_runtime({"video_operations": "labels"}, job_duration=None)
    task_id = upload(runtime, "videos/stuck.mp4", mp4_bytes(7))
    from tests.support.runtime import tasks

    deadline = time.monotonic() + 30
    while not any(h.job_id for h in slot_holders(runtime).values()):
        assert time.monotonic() < deadline, "no job was ever started"
        time.sleep(0.05)
    execution_arn = tasks(runtime).get(task_id)["execution_arn"]

    # WHEN an operator aborts the execution
    boto3.client("stepfunctions").stop_execution(
        executionArn=execution_arn, error="Operator", cause="aborted in a test"
    )

    # THEN the status-change rule's cancel orphans the holder but its job keeps the slot (it still runs)
    deadline = time.monotonic() + 60
    while not all(h.orphan for h in slot_holders(runtime).values()):
        assert time.monotonic() < deadline, "the cancel never reached the dispatcher"
        time.sleep(0.1)
    [holder] = slot_holders(runtime).values()
    task = wait_for_tasks(runtime, [task_id], timeout=30)[task_id]
    ended = _final_status(execution_arn)
    # AWS reports ABORTED; moto 5.2.5 ends a stopped execution that waits on a token as FAILED.
    assert ended in {"ABORTED", "FAILED"}
    assert task["status"] == "FAILED"
    # AND when the job ends, its notice frees the slot
    runtime.simulator.complete_job(holder.job_id, "SUCCEEDED")
    deadline = time.monotonic() + 30
    while slot_holders(runtime):
        assert time.monotonic() < deadline, "the orphan's slot was never freed when its job ended"
        time.sleep(0.1)


def test_video_workflow_40_executions_at_limit_1_with_dead_waiters_then_a_limit_change(make_runtime):
    # GIVEN 40 videos against a limit of 1 slot, and 5 operations whose iteration dies while it waits for its
    # slot (its token is failed and no cancel comes: the D1a path, where a dead waiter used to keep the slot)
    import uuid

    from rekpipe_shared.slots import SetLimit, encode
    from rekpipe_shared.slots.dynamodb import DynamoDBSlotStore

    runtime = make_runtime(
        {"video_operations": "labels", "video_slot_limit": 1}, job_duration=(0.4, 0.8), max_concurrent_jobs=20
    )
    store = DynamoDBSlotStore(runtime.outputs["SemaphoreTableName"], default_limit=1)
    sfn = boto3.client("stepfunctions")
    killed: set[str] = set()
    peak = {"before": 0, "after": 0}
    phase = {"changed": False}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            running = runtime.simulator.running_jobs()
            key = "after" if phase["changed"] else "before"
            peak[key] = max(peak[key], running)
            for waiter in store.load().waiters.values():
                if len(killed) < 5 and waiter.holder not in killed and waiter.seq >= 3:  # past the first few
                    killed.add(waiter.holder)
                    sfn.send_task_failure(taskToken=waiter.token, error="InjectedDeath",
                                          cause="the iteration died while it waited for its slot")
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    # WHEN they are all uploaded at once, and the limit is raised to 4 once 5 have finished
    task_ids = [upload(runtime, f"videos/many/clip {i:02d}.mp4", mp4_bytes(100 + i)) for i in range(40)]
    table = tasks(runtime)

    def raise_limit_after_five() -> None:
        if phase["changed"]:
            return
        finished = sum(1 for t in task_ids if (table.get(t) or {}).get("status") in ("SUCCEEDED", "FAILED"))
        if finished >= 5:
            phase["changed"] = True  # from here on up to 4 may run (the message is applied in order)
            boto3.client("sqs").send_message(QueueUrl=runtime.outputs["SlotQueueUrl"], MessageBody=encode(SetLimit(4)),
                                             MessageGroupId="video-slots", MessageDeduplicationId=str(uuid.uuid4()))

    found = wait_for_tasks(runtime, task_ids, timeout=300, during=raise_limit_after_five)
    stop.set()
    watcher.join()

    # THEN every video ended (no deadlock): the dead waiters' operations FAILED with their injected death and all
    # others SUCCEEDED. A dead waiter is dropped when the slot reaches it; one killed just after its grant keeps the
    # slot until its job ends (safety first), and every job, its own included, ended with its slot freed.
    # (A token killed after a RunJob retry had replaced it was already stale: that operation SUCCEEDED.)
    failed = {t["task_id"] for t in found.values() if t["status"] == "FAILED"}
    killed_tasks = {holder.split("-")[0] for holder in killed}
    assert len(killed) == 5 and failed and failed <= killed_tasks
    assert {t["status"] for t in found.values()} <= {"SUCCEEDED", "FAILED"}
    assert all("InjectedDeath" in str(found[t].get("operation_errors")) for t in failed)
    jobs = list(runtime.simulator.jobs.values())
    assert len(jobs) == 40 - len(failed) + len({job.job_tag for job in jobs} & killed & {f"{t}-1-labels" for t in failed})
    assert runtime.simulator.running_jobs() == 0
    # AND never more jobs than the limit of the moment: 1, then 4 (and the new limit was used)
    assert peak["before"] <= 1
    assert 2 <= peak["after"] <= 4
    assert store.header()["limit"] == 4
    # AND nobody spun while waiting: one RunJob wait per operation, whatever its wait
    for task in found.values():
        assert entered_states(execution_history(task["execution_arn"])).count("RunJob") == 1
    assert slot_holders(runtime) == {}
    print(f"\n40 executions at limit 1 then 4, 5 dead waiters: peak jobs {peak['before']} then {peak['after']}")


def test_video_workflow_rerun_writes_exactly_one_runs_pages_under_a_fresh_prefix(make_runtime):
    # GIVEN labels and moderation on a video whose first run has 2,500 labels (3 pages) and a failed moderation job
    runtime = make_runtime({"video_operations": "labels,moderation"}, job_duration=None, video_result_items=2500)
    sim = runtime.simulator

    def complete(fail_moderation: bool) -> Callable[[], None]:
        def during() -> None:
            for job in list(sim.jobs.values()):
                if job.status == "IN_PROGRESS":
                    failed = fail_moderation and job.operation == "StartContentModeration"
                    sim.complete_job(job.job_id, "FAILED" if failed else "SUCCEEDED", "simulated" if failed else None)
        return during

    task_id = upload(runtime, "videos/rerun me.mp4", mp4_bytes(9))
    first = wait_for_tasks(runtime, [task_id], during=complete(True))[task_id]
    assert first["status"] == "PARTIAL" and first["run"] == 1

    # WHEN it is re-run (redrive --partial --force: without force the labels result of run 1 would be reused,
    # issue 14) and this time the jobs find 1,200 results (2 pages) and both succeed
    sim.config.video_result_items = 1200
    assert tasks(runtime).requeue(task_id, from_status="PARTIAL", force=True) is not None
    second = wait_for_tasks(runtime, [task_id], during=complete(False), timeout=90)[task_id]

    # THEN run 2 SUCCEEDED and its prefix holds exactly its own pages: two label pages, not the third of run 1
    assert second["status"] == "SUCCEEDED" and second["run"] == 2
    output = runtime.outputs["OutputBucketName"]
    run_1, run_2 = run_prefix(first), run_prefix(second)
    assert run_1.endswith("/run-001/") and run_2.endswith("/run-002/") and run_1[:-8] == run_2[:-8]
    assert {key.removeprefix(run_2) for key in list_keys(output, run_2)} == {
        "LabelDetection/page-00001.json", "LabelDetection/page-00002.json", "LabelDetection/summary.json",
        "ContentModeration/page-00001.json", "ContentModeration/page-00002.json", "ContentModeration/summary.json",
        "manifest.json",
    }
    print("\n[layout] " + "\n[layout] ".join(sorted(list_keys(output, run_1.rsplit("/version-", 1)[0]))))
    assert read_json(output, run_2 + "LabelDetection/summary.json")["items"] == 1200
    assert len(read_json(output, run_2 + "LabelDetection/page-00002.json")["Labels"]) == 200
    # AND run 1's results are intact beside it, never mixed
    assert {key.removeprefix(run_1) for key in list_keys(output, run_1)} == {
        "LabelDetection/page-00001.json", "LabelDetection/page-00002.json", "LabelDetection/page-00003.json",
        "LabelDetection/summary.json", "manifest.json",
    }
    assert read_json(output, run_1 + "manifest.json")["status"] == "PARTIAL"
    manifest = read_json(output, run_2 + "manifest.json")
    assert manifest["run"] == 2 and manifest["status"] == "SUCCEEDED"
    assert second["manifest_uri"] == f"s3://{output}/{run_2}manifest.json"
    # AND latest.json of the key points at run 2
    pointer = read_json(output, run_2.rsplit("/version-", 1)[0] + "/latest.json")
    assert pointer["run"] == 2 and pointer["manifest"] == second["manifest_uri"]


def test_video_workflow_get_throttled_half_the_time_for_a_minute_every_paid_job_succeeds(make_runtime, monkeypatch):
    # GIVEN four videos x two operations, 2,500 results each (3 Get* pages per job), and Get* throttled on 50 % of
    # calls for a minute; each function tries Get* only twice, so the state machine's retry runs too
    monkeypatch.setenv("GET_RETRY_MAX_ATTEMPTS", "2")
    runtime = make_runtime({"video_operations": "labels,moderation", "video_get_retry_seconds": 1},
                           video_result_items=2500)
    sim = runtime.simulator
    gets = ("GetLabelDetection", "GetContentModeration")
    sim.config.throttle_rates = dict.fromkeys(gets, 0.5)
    calm = threading.Timer(60.0, sim.config.throttle_rates.clear)
    calm.start()
    try:
        # WHEN the videos are uploaded and analysed
        task_ids = [upload(runtime, f"videos/busy {index}.mp4", mp4_bytes(40 + index)) for index in range(4)]
        found = wait_for_tasks(runtime, task_ids, timeout=420)
    finally:
        calm.cancel()

    # THEN every paid job SUCCEEDED, and so did every task, with all its pages
    jobs = list(sim.jobs.values())
    assert len(jobs) == 8 and all(job.status == "SUCCEEDED" for job in jobs)
    assert {task["status"] for task in found.values()} == {"SUCCEEDED"}, {t: v["status"] for t, v in found.items()}
    output = runtime.outputs["OutputBucketName"]
    for task in found.values():
        for folder in ("LabelDetection", "ContentModeration"):
            assert read_json(output, f"{run_prefix(task)}{folder}/summary.json")["items"] == 2500
    # AND the throttling really happened and was retried: by the functions, and by the state machine by name
    throttled = sum(sim.stats.throttled.get(api, 0) for api in gets)
    named = [event["taskFailedEventDetails"]["error"]
             for task in found.values() for event in execution_history(task["execution_arn"])
             if event.get("type") == "TaskFailed"]
    state_machine_retries = named.count("RekognitionThrottledError")
    print(f"\n[retries] Get* calls {sum(sim.stats.calls.get(api, 0) for api in gets)}, throttled {throttled}, "
          f"state machine retries (RekognitionThrottledError) {state_machine_retries}")
    assert throttled > 0
    assert state_machine_retries > 0
    assert set(named) <= {"RekognitionThrottledError"}


def test_video_workflow_an_hour_of_waiting_on_the_simulated_clock_costs_one_wait(aws_env):
    # GIVEN the runtime with every timer on the simulator's clock at x100 (HeartbeatSeconds 900 s = 9 real s,
    # the tick every 60 s = 0.6 real s) and three videos whose jobs take 20 simulated minutes, against limit 1
    from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions

    options = RuntimeOptions(
        # The default waits (1 day each): RunJob's backstop TimeoutSeconds is 2 days and 900 s, simulated
        settings=PipelineSettings.from_mapping({"video_operations": "labels", "video_slot_limit": 1}),
        simulator=SimulatorConfig(seed=4, job_duration=(1200, 1200), clock_scale=100),
        timers_on_simulated_clock=True,
    )
    with EmbeddedRuntime(options) as runtime:
        clock = runtime.simulator.clock
        started = clock.now()
        task_ids = [upload(runtime, f"videos/long/clip {i}.mp4", mp4_bytes(200 + i)) for i in range(3)]

        # WHEN they run one after the other (the last waits 40 simulated minutes for its slot: 8 heartbeat periods)
        found = wait_for_tasks(runtime, task_ids, timeout=120)
        waited_hours = (clock.now() - started) / 3600

        # THEN all succeed, each operation with one RunJob wait: the dispatcher's heartbeats (every 300 simulated
        # seconds) kept every token alive across hours, and no timeout, retry or re-check added a state
        assert {t["status"] for t in found.values()} == {"SUCCEEDED"}, [
            (t.get("error_code"), t.get("error_message"), t.get("operation_errors")) for t in found.values()]
        assert waited_hours >= 1.0
        for task in found.values():
            history = execution_history(task["execution_arn"])
            assert entered_states(history).count("RunJob") == 1
            assert not [e for e in history if e["type"] in ("TaskTimedOut", "TaskFailed")]
        assert runtime.simulator.peak_running_jobs == 1
        assert slot_holders(runtime) == {}
