"""The CLI's error contract: user-fixable problems exit 1 with one line, bugs exit 255 with a traceback."""

from __future__ import annotations

import json
import socket

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.cli.backfill_plan import iter_bucket
from rekpipe.cli.exceptions import AccessDeniedError, StackNotReadyError, StackOutputMissingError, as_user_error
from rekpipe.cli.stack import Clients, GlobalOptions, StackOutputs, load_stack_outputs
from rekpipe.cli.status import do_cli as status_do_cli


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    """No credentials or region anywhere: not in the environment, files, or instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _error_line(result) -> str:
    """The last stderr line, which must be the whole error."""
    return result.stderr.strip().splitlines()[-1]


def test_cli_missing_stack_is_one_line_exit_1(moto_aws):
    # GIVEN an account without the pipeline's stack
    # WHEN status is asked for
    result = CliRunner().invoke(main, ["status"])

    # THEN one line says which stack, where, and what to do; no traceback
    assert result.exit_code == 1
    assert _error_line(result) == ("Error: Stack RekognitionPipeline was not found in us-east-1: deploy it with "
                                   "`npx cdk deploy`, or pass --stack-name/--region")
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_cli_no_credentials_says_how_to_configure(no_aws_config, closed_port):
    # GIVEN no credentials at all (and an endpoint that could not be reached anyway)
    # WHEN a command needs AWS
    result = CliRunner().invoke(main, ["--region", "eu-west-1", "--endpoint-url", f"http://127.0.0.1:{closed_port}",
                                       "status"])

    # THEN the error says how to configure credentials or use the emulator
    assert result.exit_code == 1
    assert _error_line(result) == ("Error: No usable AWS credentials were found: run `aws configure` (or `aws sso "
                                   "login`), set AWS_PROFILE or pass --profile; for the local emulator use --local")
    assert "Traceback" not in result.output


def test_cli_no_region_says_how_to_set_one(no_aws_config):
    # GIVEN no region configured anywhere
    # WHEN a command runs
    result = CliRunner().invoke(main, ["status"])

    # THEN the error names the option and the variable
    assert result.exit_code == 1
    assert "No AWS region is configured: pass --region, set AWS_REGION" in _error_line(result)


def test_cli_unknown_profile_is_user_error(no_aws_config):
    # GIVEN a profile that is not configured
    # WHEN it is used
    result = CliRunner().invoke(main, ["--profile", "nope", "status"])

    # THEN the error names it
    assert result.exit_code == 1
    assert "AWS profile 'nope' was not found" in _error_line(result)


def test_cli_local_without_emulator_file(aws_env, tmp_path, monkeypatch):
    # GIVEN a folder where no emulator was started
    monkeypatch.chdir(tmp_path)

    # WHEN --local is used
    result = CliRunner().invoke(main, ["--local", "status"])

    # THEN it says to start one
    assert result.exit_code == 1
    assert _error_line(result).startswith(
        "Error: No local emulator is running here; start one with `rekpipe local up`")


def test_cli_local_reads_emulator_file_and_needs_no_credentials(no_aws_config, tmp_path, closed_port):
    # GIVEN an emulator file (and no AWS credentials on this machine)
    (tmp_path / ".rekpipe").mkdir()
    (tmp_path / ".rekpipe" / "emulator.json").write_text(json.dumps(
        {"endpoint_url": f"http://127.0.0.1:{closed_port}", "region": "eu-west-1", "stack_name": "LocalPipeline"}))

    # WHEN the clients are resolved with --local
    clients = Clients(GlobalOptions(local=True), cwd=tmp_path)

    # THEN endpoint, region and stack come from the file, and placeholder credentials are used
    assert clients.target.endpoint_url == f"http://127.0.0.1:{closed_port}"
    assert (clients.target.region, clients.target.stack_name) == ("eu-west-1", "LocalPipeline")
    assert clients.client("sqs").meta.endpoint_url == f"http://127.0.0.1:{closed_port}"
    assert clients.session.get_credentials() is not None


def test_cli_local_emulator_gone_is_unreachable(no_aws_config, tmp_path, closed_port, monkeypatch):
    # GIVEN an emulator file left behind by an emulator that has stopped
    (tmp_path / ".rekpipe").mkdir()
    (tmp_path / ".rekpipe" / "emulator.json").write_text(json.dumps(
        {"endpoint_url": f"http://127.0.0.1:{closed_port}", "region": "us-east-1", "stack_name": "RekognitionPipeline"}))
    monkeypatch.chdir(tmp_path)

    # WHEN a command runs with --local
    result = CliRunner().invoke(main, ["--local", "status"])

    # THEN it says the endpoint cannot be reached and how to start the emulator
    assert result.exit_code == 1
    assert f"Cannot reach http://127.0.0.1:{closed_port}" in _error_line(result)
    assert "rekpipe local up" in _error_line(result)
    assert "Traceback" not in result.output


def test_cli_local_and_endpoint_url_conflict(aws_env, tmp_path, monkeypatch):
    # GIVEN both ways of naming an endpoint
    monkeypatch.chdir(tmp_path)

    # WHEN both are passed
    result = CliRunner().invoke(main, ["--local", "--endpoint-url", "http://localhost:1", "status"])

    # THEN the user is told to choose
    assert result.exit_code == 1
    assert "Pass either --local or --endpoint-url, not both" in _error_line(result)


def test_cli_access_denied_names_the_action(aws_env):
    # GIVEN a CloudFormation endpoint that denies DescribeStacks with S3-style terse text (no action in it)
    clients = Clients(GlobalOptions())
    cloudformation = clients.client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_client_error("describe_stacks", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403)

    # WHEN status needs the stack
    with stubber, pytest.raises(ClientError) as raised:
        status_do_cli(GlobalOptions(), clients=clients)

    # THEN the user-facing error names the IAM action, taken from the failed call's service model
    error = as_user_error(raised.value)
    assert isinstance(error, AccessDeniedError)
    assert error.action == "cloudformation:DescribeStacks"
    assert error.message.startswith(
        "Access denied to cloudformation:DescribeStacks on RekognitionPipeline: Access Denied. Ask for")


def test_cli_s3_access_denied_names_bucket_and_iam_action(aws_env):
    # GIVEN S3 denying the listing with its usual bare "Access Denied"
    clients = Clients(GlobalOptions())
    s3 = clients.client("s3")
    stubber = Stubber(s3)
    stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403)

    # WHEN the backfill lists the bucket
    with stubber, pytest.raises(ClientError) as raised:
        list(iter_bucket(s3, "photos", "2019/", versioned=False))

    # THEN the message names the IAM action (not the API name) and the bucket
    assert as_user_error(raised.value).message == (
        "Access denied to s3:ListBucket on s3://photos/: Access Denied. Ask for s3:ListBucket on s3://photos/, "
        "or use --profile with a role that has it")


def test_cli_access_denied_from_iam_message_exits_1(aws_env, monkeypatch):
    # GIVEN an IAM denial whose message names the missing permission
    def denied(*_args, **_kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": (
            "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: cloudformation:DescribeStacks "
            "on resource: arn:aws:cloudformation:us-east-1:123456789012:stack/RekognitionPipeline/*")}},
            "DescribeStacks")

    monkeypatch.setattr("rekpipe.cli.stack.load_stack_outputs", denied)

    # WHEN status runs
    result = CliRunner().invoke(main, ["status"])

    # THEN one line names the action and how to get it
    assert result.exit_code == 1
    assert _error_line(result).startswith("Error: Access denied to cloudformation:DescribeStacks: User: ")
    assert "use --profile with a role that has it" in _error_line(result)


def test_cli_unexpected_exception_exits_255_with_bug_hint(aws_env, monkeypatch):
    # GIVEN a bug somewhere in a command
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("rekpipe.cli.status.do_cli", broken)

    # WHEN the command runs
    result = CliRunner().invoke(main, ["status"])

    # THEN it exits 255 with the traceback and where to report it
    assert result.exit_code == 255
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: boom" in result.stderr
    assert "An unexpected error occurred while running `rekpipe status`." in result.stderr
    assert "This is a bug in rekpipe" in result.stderr
    assert result.stdout == ""


def test_cli_version_prints_package_version():
    # GIVEN the installed package
    # WHEN --version is asked for
    result = CliRunner().invoke(main, ["--version"])

    # THEN it prints the name and version
    assert result.exit_code == 0
    assert result.stdout.startswith("rekpipe ")


def test_cli_group_registers_every_command():
    # GIVEN the group
    # WHEN its help is shown
    result = CliRunner().invoke(main, ["--help"])

    # THEN every command is listed, the local runtime included
    assert result.exit_code == 0
    for command in ("backfill", "status", "redrive", "local"):
        assert f"  {command} " in result.stdout


def test_stack_outputs_are_typed_and_collect_every_dlq():
    # GIVEN outputs with two known DLQs, an extra one and an unknown key
    outputs = {"TaskTableName": "t", "ImageQueueUrl": "iq", "ImageDlqUrl": "idlq", "VideoDlqUrl": "vdlq",
               "IngestDlqUrl": "xdlq", "SomethingNew": "x"}

    # WHEN they are typed
    typed = StackOutputs.from_outputs("S", outputs)

    # THEN known ones are attributes, every *DlqUrl is a DLQ, and a missing one is a clear error
    assert typed.task_table_name == "t" and typed.image_queue_url == "iq" and typed.video_queue_url is None
    assert typed.dlq_urls == {"Image": "idlq", "Ingest": "xdlq", "Video": "vdlq"}
    assert typed.queue_urls == {"ImageQueue": "iq", "ImageDlq": "idlq", "IngestDlq": "xdlq", "VideoDlq": "vdlq"}
    with pytest.raises(StackOutputMissingError, match="Stack S has no output InventoryBucketName: redeploy"):
        typed.require("InventoryBucketName")


def test_stack_rolled_back_is_user_error(aws_env):
    # GIVEN a stack whose creation rolled back
    clients = Clients(GlobalOptions())
    cloudformation = clients.client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_response("describe_stacks", {"Stacks": [{
        "StackName": "RekognitionPipeline", "StackStatus": "ROLLBACK_COMPLETE",
        "CreationTime": "2024-01-01T00:00:00Z"}]})

    # WHEN its outputs are read
    with stubber, pytest.raises(StackNotReadyError) as raised:
        load_stack_outputs(cloudformation, clients.target)

    # THEN the error says its state and what to do
    assert "is ROLLBACK_COMPLETE" in raised.value.message and "npx cdk deploy" in raised.value.message
