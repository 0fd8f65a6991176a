"""``rekpipe local``'s function output: Powertools loggers write to the run's log file, then go back to stdout."""

from __future__ import annotations

import contextlib
import io
import uuid

from aws_lambda_powertools import Logger

from rekpipe.cli.local.function_output import function_output_to


def test_function_output_to_moves_an_existing_powertools_logger_to_the_stream_and_back(capsys):
    # GIVEN a Powertools logger created before the run (its handler bound to the stdout of that moment)
    logger = Logger(service=f"test-{uuid.uuid4().hex}")
    log = io.StringIO()

    # WHEN it logs during the run and after it
    with function_output_to(log):
        logger.warning("during the run")
    logger.warning("after the run")

    # THEN the record of the run went to the log only, and the next one to stdout again
    assert '"message":"during the run"' in log.getvalue()
    out = capsys.readouterr().out
    assert "during the run" not in out and '"message":"after the run"' in out


def test_function_output_to_repoints_a_logger_left_on_an_earlier_runs_closed_stdout(capsys):
    # GIVEN a Powertools logger created during an earlier run whose stdout was a captured stream, closed since
    # (as `CliRunner` closes its output after each command)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), function_output_to(io.StringIO()):
        logger = Logger(service=f"test-{uuid.uuid4().hex}")
    captured.close()
    log = io.StringIO()

    # WHEN a second run logs through it, and then the process goes on
    with function_output_to(log):
        logger.warning("second run")
    logger.warning("afterwards")

    # THEN the second run's log has the record, and the logger writes to the real stdout afterwards
    assert '"message":"second run"' in log.getvalue()
    assert '"message":"afterwards"' in capsys.readouterr().out
