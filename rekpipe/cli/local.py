"""``rekpipe local``: run the whole pipeline on this machine with the embedded emulator.

A stub group for now: ``rekpipe local up`` and ``rekpipe local run`` are added here by the
embedded-runtime work. ``local up`` writes ``.rekpipe/emulator.json``
(``{"endpoint_url", "region", "stack_name"}``), which the other commands read with ``--local``.
"""

from __future__ import annotations

import click


@click.group("local")
def local() -> None:
    """Run the pipeline locally on the embedded emulator (no AWS account needed)."""
