"""``rekpipe local up``'s work: serve the emulator on loopback until Ctrl-C.

It writes ``.rekpipe/emulator.json`` (``{"endpoint_url", "region", "stack_name"}``), which ``--local``
reads, and removes it on exit; the functions' own output goes to ``.rekpipe/functions.log``.

S3 Batch Operations: moto has no S3 Control jobs API, so the emulator's
(:mod:`rekpipe.emulator.batch_operations`) is installed before the server starts. ``rekpipe --local
backfill`` then creates its job with the same ``CreateJob`` call it makes against AWS, and the job runs
in the emulator's process; ``aws s3control describe-job`` and ``list-jobs`` answer too.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from rekpipe.cli.exceptions import UserException
from rekpipe.cli.local.function_output import function_output_to
from rekpipe.cli.local.view import describe_simulator, print_up
from rekpipe.cli.stack import EMULATOR_FILE

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

    from rekpipe.cli.local.options import LocalUpOptions

UP_LOG_FILE = Path(".rekpipe") / "functions.log"


def serve_local(options: LocalUpOptions) -> None:
    """Serve the emulator on 127.0.0.1:``options.port`` until Ctrl-C (or ``options.stop`` is set).

    Parameters
    ----------
    options: LocalUpOptions
        The port, the simulator's knobs and the settings file (and, for tests, the folder and a stop event).
    """
    import sys
    import threading

    from rekpipe.cli.console import note

    cwd, port = options.cwd, options.port
    folder = cwd or Path.cwd()
    state_path = folder / EMULATOR_FILE
    _refuse_running_emulator(state_path)
    if port:
        _require_free_port(port)
    run_settings = options.emulator.pipeline_settings()
    simulator = options.emulator.simulator_config()
    note(f"Starting the emulator on 127.0.0.1:{port or '<free port>'} (synthesizing and deploying the stack)...")
    note(describe_simulator(simulator))
    stop = options.stop or threading.Event()
    results = sys.stdout
    log_path = folder / UP_LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log, function_output_to(log), _stop_on_signals(stop):
        from rekpipe.emulator.batch_operations import BatchOperationsService
        from rekpipe.emulator.runtime import EmbeddedRuntime, RuntimeOptions, write_state_file

        # Before the server starts: moto fixes a service's routes when it first serves it.
        batch = BatchOperationsService().install()
        runtime = EmbeddedRuntime(RuntimeOptions(settings=run_settings, simulator=simulator, server=True, port=port))
        try:
            runtime.start()
            write_state_file(state_path, runtime)
            print_up(runtime, results, state_path.relative_to(folder) if cwd is None else state_path,
                     log_path.relative_to(folder) if cwd is None else log_path)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
            note("Stopping the emulator...")
        finally:
            _remove_state_file(state_path, runtime.endpoint_url)
            batch.uninstall()
            runtime.stop()
    note(f"Emulator stopped; removed {state_path}")


def _refuse_running_emulator(state_path: Path) -> None:
    """One emulator per folder: a live one is an error, a stale file is replaced."""
    from rekpipe.cli.console import note
    from rekpipe.cli.stack import read_emulator_file

    if not state_path.exists():
        return
    try:
        endpoint = str(read_emulator_file(state_path.parent.parent)["endpoint_url"])
    except UserException:
        note(f"Replacing unreadable {state_path}")
        return
    if _answers(endpoint):
        raise UserException(f"An emulator is already running here at {endpoint} ({state_path}): use it with "
                            "--local, or stop it with Ctrl-C in its terminal first")
    note(f"Replacing {state_path}: the emulator it names ({endpoint}) is not running")


def _answers(endpoint: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


def _require_free_port(port: int) -> None:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UserException(f"Port {port} on 127.0.0.1 is in use: pick another with --port (--port 0 picks a free "
                                "one)") from None


def _remove_state_file(state_path: Path, endpoint: str | None) -> None:
    """Remove the state file if it is still ours (another emulator may have replaced it)."""
    import json

    with contextlib.suppress(OSError, ValueError):
        if endpoint is None or json.loads(state_path.read_text(encoding="utf-8")).get("endpoint_url") == endpoint:
            state_path.unlink()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C (SIGINT) stop the emulator (only the main thread may install handlers).

    SIGINT gets a handler of its own: a process started with SIGINT ignored (from a script's ``&``, ``nohup``,
    or a test runner's worker) inherits that, and Python then raises no KeyboardInterrupt, so Ctrl-C did nothing.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


__all__ = ["UP_LOG_FILE", "serve_local"]
