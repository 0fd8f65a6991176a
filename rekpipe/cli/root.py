"""The ``rekpipe`` group: global options, command registration and the exit-code contract.

Exit codes: 0 success, 1 a user-fixable error (one line, no traceback), 2 a usage error (click),
255 a bug (traceback and a bug-report hint).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from rekpipe.cli import backfill, outputs, redrive, report, slots, status
from rekpipe.cli.exceptions import UnhandledException, as_user_error
from rekpipe.cli.local import local
from rekpipe.cli.stack import DEFAULT_STACK_NAME, GlobalOptions


def _version() -> str:
    try:
        return version("rekpipe")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


class _Group(click.Group):
    """A group that turns every unexpected exception into an exit code and a message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:  # the CLI's last line: classify everything
            options = ctx.obj if isinstance(ctx.obj, GlobalOptions) else GlobalOptions()
            user_error = as_user_error(error, local=options.local)
            if user_error is not None:
                raise user_error from error
            command = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand]))
            raise UnhandledException(command, error) from error


@click.group("rekpipe", cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), "--version", prog_name="rekpipe", message="%(prog)s %(version)s")
@click.option("--stack-name", metavar="NAME",
              help=f"The pipeline's CloudFormation stack (default: {DEFAULT_STACK_NAME}, or the emulator's with "
                   "--local).")
@click.option("--region", metavar="REGION", help="AWS region (default: your AWS configuration).")
@click.option("--profile", metavar="PROFILE", help="AWS named profile.")
@click.option("--endpoint-url", metavar="URL", help="Send every AWS call to this endpoint (an emulator).")
@click.option("--local", "local_", is_flag=True,
              help="Use the emulator started by `rekpipe local up` in this folder (.rekpipe/emulator.json).")
@click.pass_context
def main(ctx: click.Context, stack_name: str | None, region: str | None, profile: str | None,
         endpoint_url: str | None, local_: bool) -> None:
    """Operate the Rekognition pipeline: backfill existing objects, watch progress, find results, redrive failures.

    Every command finds the pipeline's resources from its CloudFormation stack's outputs.
    Results go to stdout; progress and notes go to stderr.
    """
    ctx.obj = GlobalOptions(stack_name=stack_name, region=region, profile=profile, endpoint_url=endpoint_url,
                            local=local_)


main.add_command(backfill.cli, "backfill")
main.add_command(status.cli, "status")
main.add_command(redrive.cli, "redrive")
main.add_command(outputs.cli, "outputs")
main.add_command(local, "local")
main.add_command(report.cli, "report")
main.add_command(slots.cli, "slots")

__all__ = ["main"]
