"""Where the functions' own output goes during a local run: a log file, so stdout keeps only results.

In Lambda, Powertools logs and metrics go to stdout. Here the functions run in the command's process, so
their output, warnings and library log records are sent to a log file for the duration of a run.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def function_output_to(stream: IO[str]) -> Iterator[None]:
    """Send what the functions print (Powertools logs and metrics go to stdout, as in Lambda), warnings and
    library log records to ``stream``, and silence the moto server's request log; restore everything afterwards.

    Powertools binds a service's log handler to ``sys.stdout`` once per process, so handlers that
    already exist (an earlier run in this process) are pointed at the stream as well.
    """
    original_stdout = sys.stdout
    moved: dict[logging.StreamHandler[Any], Any] = {}
    for handler in _powertools_handlers():
        moved[handler] = _point_handler(handler, stream)
    catch_all = logging.StreamHandler(stream)
    catch_all.setLevel(logging.WARNING)
    logging.root.addHandler(catch_all)
    logging.captureWarnings(True)
    werkzeug = logging.getLogger("werkzeug")  # the moto server's line per request
    werkzeug_level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        werkzeug.setLevel(werkzeug_level)
        logging.captureWarnings(False)
        logging.root.removeHandler(catch_all)
        for handler in _powertools_handlers():
            if handler.stream is stream:  # created during the run, or moved: never leave it on a closed file
                previous = moved.get(handler)
                _point_handler(handler, previous if previous is not None and not getattr(previous, "closed", False)
                               else original_stdout)


def _powertools_handlers() -> list[logging.StreamHandler[Any]]:
    """The stream handlers of every Powertools ``Logger`` in this process, found through public APIs only.

    Why this exists: Powertools' ``Logger(service=...)`` creates ``logging.StreamHandler(sys.stdout)`` once per
    service and process, binding the stream current at that moment, and offers no public way to point an
    existing logger at another stream (``stream`` and ``logger_handler`` are constructor arguments, and the
    handlers' code must not change for the emulator's sake). So the handlers are found as standard ``logging``
    handlers whose formatter is a Powertools formatter (``BasePowertoolsFormatter``, the documented base class
    of every Powertools formatter, custom ones included), rather than by Powertools' private marker attribute
    on the logger, and re-pointed with the standard ``StreamHandler.setStream``.
    """
    from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter

    handlers = []
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                            and isinstance(h.formatter, BasePowertoolsFormatter))
    return handlers


def _point_handler(handler: logging.StreamHandler[Any], stream: IO[str]) -> Any:
    """``setStream`` that also works when the handler's current stream is already closed
    (an earlier run's captured stdout): that stream cannot be flushed, only replaced."""
    if getattr(handler.stream, "closed", False):
        previous, handler.stream = handler.stream, stream
        return previous
    return handler.setStream(stream)


__all__ = ["function_output_to"]
