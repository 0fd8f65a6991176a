"""``rekpipe local``: help, one-line errors, and ``local up`` served for real in a subprocess.

``local up`` runs in its own process because server mode changes process-wide settings (moto's
Step Functions config, ``AWS_ENDPOINT_URL``); the test talks to it as a user would, with boto3,
``rekpipe --local status`` and ``rekpipe --local backfill``, then stops it with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from rekpipe.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _error_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback port something is listening on."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


# --- help and errors (no emulator is started) ---------------------------------------------------------
def test_local_help_says_analysis_content_is_synthetic():
    # GIVEN the local group and its commands
    runner = CliRunner()

    # WHEN their help is shown
    group, run, up = (runner.invoke(main, [*args, "--help"]) for args in (["local"], ["local", "run"],
                                                                         ["local", "up"]))

    # THEN each says the analysis is synthetic, and the knobs are documented
    assert group.exit_code == run.exit_code == up.exit_code == 0
    assert "synthetic" in group.stdout and "  run " in group.stdout and "  up " in group.stdout
    assert "Analysis content is SYNTHETIC" in run.stdout and "Analysis content is SYNTHETIC" in up.stdout
    for option in ("--images", "--videos", "--out", "--timeout", "--seed", "--throttle-rate", "--failed-job-rate",
                   "--lost-notice-rate", "--tps-quota", "--job-seconds", "--server"):
        assert option in run.stdout
    assert "--port" in up.stdout and ".rekpipe/emulator.json" in up.stdout


def test_local_run_missing_folder_is_one_line_exit_1(tmp_path):
    # GIVEN a folder that does not exist
    missing = tmp_path / "no such folder"

    # WHEN it is to be analysed
    result = CliRunner().invoke(main, ["local", "run", str(missing)])

    # THEN one line says what is wrong and what to do; nothing on stdout, no traceback
    assert result.exit_code == 1
    assert _error_line(result) == (f"Error: Folder {missing} does not exist: pass a folder of images and videos, or "
                                   "leave it out to analyse generated samples")
    assert result.stdout == "" and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tps-quota", "DetectLables=5"], "'DetectLables' is not a Rekognition operation"),
        (["--tps-quota", "DetectLabels=0"], "--tps-quota takes OPERATION=TPS with TPS > 0"),
        (["--job-seconds", "5,2"], "--job-seconds needs 0 <= MIN <= MAX, not '5,2'"),
        (["--job-seconds", "soon"], "--job-seconds takes MIN,MAX seconds like 2,5"),
        (["--images", "0", "--videos", "0"], "Nothing to analyse: --images and --videos are both 0"),
        (["FOLDER", "--images", "3"], "--images/--videos generate samples and cannot be combined with FOLDER"),
        (["FILE"], "is a file, not a folder"),
        (["EMPTY"], "has no files: add images"),
        (["--out", "FILE"], "is a file: pass a folder for the outputs"),
    ],
)
def test_local_run_bad_input_is_one_line_exit_1(tmp_path, arguments, message):
    # GIVEN a folder, an empty folder and a file to point options at
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.jpg").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    places = {"FOLDER": str(tmp_path / "media"), "FILE": str(tmp_path / "file.txt"), "EMPTY": str(tmp_path / "empty")}

    # WHEN `local run` is given the bad input
    result = CliRunner().invoke(main, ["local", "run", *(places.get(arg, arg) for arg in arguments)])

    # THEN it stops before starting anything, with one line
    assert result.exit_code == 1, result.output
    assert message in _error_line(result)
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_local_up_refuses_a_second_emulator_in_the_same_folder(tmp_path, monkeypatch, listening_port):
    # GIVEN a running emulator's state file in this folder
    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".rekpipe" / "emulator.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"endpoint_url": f"http://127.0.0.1:{listening_port}", "region": "us-east-1"}))

    # WHEN another `local up` starts here
    result = CliRunner().invoke(main, ["local", "up", "--port", "0"])

    # THEN it refuses with one line, and leaves the other emulator's file alone
    assert result.exit_code == 1
    assert _error_line(result).startswith(f"Error: An emulator is already running here at http://127.0.0.1:"
                                          f"{listening_port}")
    assert state.exists()


def test_local_up_port_in_use_is_one_line_exit_1(tmp_path, monkeypatch, listening_port):
    # GIVEN a port another program listens on
    monkeypatch.chdir(tmp_path)

    # WHEN `local up` is asked to use it
    result = CliRunner().invoke(main, ["local", "up", "--port", str(listening_port)])

    # THEN the error names the port and the way out, and no state file is written
    assert result.exit_code == 1
    assert _error_line(result) == (f"Error: Port {listening_port} on 127.0.0.1 is in use: pick another with --port "
                                   "(--port 0 picks a free one)")
    assert not (tmp_path / ".rekpipe" / "emulator.json").exists()


# --- local up, served for real ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"local up exited {process.returncode}: {process.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, "local up did not write its state file in time"
        time.sleep(0.25)


@pytest.mark.e2e
def test_local_up_serves_the_pipeline_until_ctrl_c(aws_env, tmp_path, monkeypatch):
    # GIVEN `rekpipe local up` started in a folder, as a user would in a terminal
    from rekpipe.cli.stack import Clients, GlobalOptions
    from rekpipe.samples import jpeg_bytes
    from rekpipe_shared.tasks import TaskTable, task_id_for

    port = _free_port()
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    # SIGUSR1 makes the child print every thread's stack (to its stderr), for a stop that hangs.
    code = ("import faulthandler, signal; faulthandler.register(signal.SIGUSR1, all_threads=True); "
            "from rekpipe.cli import main; main()")
    process = subprocess.Popen(
        [sys.executable, "-c", code, "local", "up", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        state = tmp_path / ".rekpipe" / "emulator.json"
        started = time.monotonic()
        _wait_for(state, process, timeout=120)
        print(f"\n[wall time] rekpipe local up ready in {time.monotonic() - started:.1f} s")
        monkeypatch.chdir(tmp_path)

        # WHEN a photo is uploaded through the endpoint with plain boto3
        written = json.loads(state.read_text())
        clients = Clients(GlobalOptions(local=True), cwd=tmp_path)
        outputs = clients.stack_outputs()
        content = outputs.require("ContentBucketName")
        version = clients.client("s3").put_object(Bucket=content, Key="holiday/beach & sun.jpg",
                                                  Body=jpeg_bytes(3))["VersionId"]
        table = TaskTable(outputs.require("TaskTableName"), boto3_client=clients.client("dynamodb"))
        task_id = task_id_for(content, "holiday/beach & sun.jpg", version, None)
        deadline = time.monotonic() + 60
        while (table.get(task_id) or {}).get("status") != "SUCCEEDED":
            assert time.monotonic() < deadline, f"task never SUCCEEDED: {table.get(task_id)}"
            time.sleep(0.5)

        # THEN the state file points --local at the endpoint, and the task SUCCEEDED there
        assert written == {"endpoint_url": f"http://127.0.0.1:{port}", "region": "us-east-1",
                           "stack_name": "RekognitionPipeline", "rekognition_endpoint_url": written[
                               "rekognition_endpoint_url"], "credentials": written["credentials"],
                           "function_credentials": written["function_credentials"]}
        # AND a function's role, probed over the endpoint, may not do what its policy does not allow
        as_analyze_image = boto3.client("s3", endpoint_url=written["endpoint_url"], region_name="us-east-1",
                                        **written["function_credentials"]["analyze_image"])
        with pytest.raises(ClientError) as denied:
            as_analyze_image.put_object(Bucket=content, Key="planted.jpg", Body=b"x")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert "is not authorized to perform: s3:PutObject on resource" in denied.value.response["Error"]["Message"]
        assert "AnalyzeImageRole" in denied.value.response["Error"]["Message"]
        # AND those are the operator's keys: another key is refused, as AWS refuses a key it never issued
        stranger = boto3.client("sns", endpoint_url=written["endpoint_url"], region_name="us-east-1",
                                aws_access_key_id="AKIASTRANGER0000000", aws_secret_access_key="x")
        with pytest.raises(ClientError) as refused:
            stranger.list_topics()
        assert refused.value.response["Error"]["Code"] in ("InvalidClientTokenId", "UnrecognizedClientException")
        # AND `rekpipe --local status` reads it
        status = CliRunner().invoke(main, ["--local", "status"])
        assert status.exit_code == 0, status.stderr
        assert "SUCCEEDED" in status.stdout

        # WHEN `rekpipe --local backfill` lists the content bucket and creates its Batch Operations job
        backfill = CliRunner().invoke(main, ["--local", "backfill", "--bucket", content, "--yes"])
        assert backfill.exit_code == 0, backfill.stderr
        job_id = backfill.stdout.split("Created S3 Batch Operations job ", 1)[1].split()[0]
        s3control = clients.client("s3control")
        deadline = time.monotonic() + 60
        while (job := s3control.describe_job(AccountId="123456789012", JobId=job_id)["Job"])["Status"] != "Complete":
            assert job["Status"] in ("New", "Active"), job
            assert time.monotonic() < deadline, job
            time.sleep(0.5)

        # THEN the emulator ran it: the photo was already known, so it is Succeeded and not analysed twice
        assert job["ProgressSummary"]["TotalNumberOfTasks"] == 1
        assert job["ProgressSummary"]["NumberOfTasksSucceeded"] == 1
        assert sum(table.counts().values()) == 1

        # WHEN the user presses Ctrl-C
        process.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        try:
            stdout, stderr = process.communicate(timeout=180)  # it exits 0; how fast is not this test's claim
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)
            time.sleep(3)
            process.kill()
            _, stderr = process.communicate()
            log = tmp_path / ".rekpipe" / "functions.log"
            pytest.fail(f"local up still running 180 s after Ctrl-C; its threads:\n{stderr[-12000:]}\n"
                        f"log tail:\n{log.read_text()[-3000:] if log.exists() else '(no log)'}")
        print(f"[wall time] rekpipe local up stopped in {time.monotonic() - stopping:.1f} s after Ctrl-C")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    # THEN it exits 0, removes its state file, and had printed how to connect and what to try
    assert process.returncode == 0, stderr[-3000:]
    assert not state.exists()
    assert f"Endpoint:     http://127.0.0.1:{port}" in stdout
    assert "AWS_ACCESS_KEY_ID=AKIAREKPIPEOPERATOR1" in stdout and "Region:       us-east-1" in stdout
    assert f"aws --endpoint-url http://127.0.0.1:{port} s3 cp photo.jpg s3://{content}/" in stdout
    assert "rekpipe --local status" in stdout and "OutputBucketName" in stdout
    assert '"level":' not in stdout  # function logs went to .rekpipe/functions.log
    assert (tmp_path / ".rekpipe" / "functions.log").read_text()
    assert "Emulator stopped" in stderr
    assert boto3.session.Session().get_credentials() is not None  # the test's own environment is untouched
