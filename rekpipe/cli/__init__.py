"""The ``rekpipe`` operator CLI: ``backfill``, ``status``, ``redrive`` and the ``local`` runtime.

Each command module holds a thin click ``cli`` that forwards to ``do_cli``, where the logic lives
(and which tests call directly).
"""

from __future__ import annotations

from rekpipe.cli.exceptions import UnhandledException, UserException
from rekpipe.cli.root import main

__all__ = ["UnhandledException", "UserException", "main"]
