"""Output helpers: results on stdout, everything else (context, progress, notes) on stderr.

Keeping stdout for results only means ``rekpipe status --json | jq`` and
``rekpipe backfill ... > job.txt`` always get clean data.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console

_NON_TTY_WIDTH = 160
"""Rich wraps at 80 columns when not on a terminal; object keys need more."""


def note(message: str) -> None:
    """A line for the person at the terminal (resolved values, hints), on stderr."""
    click.echo(message, err=True)


class Progress:
    """One progress line on stderr, rewritten in place with ``\\r`` and at most ``per_second`` times a second.

    Parameters
    ----------
    per_second: float
        Redraw rate; a run over millions of objects must not spend its time printing.

    Example
    -------
    >>> with Progress() as progress:
    ...     for n in range(10):
    ...         progress.update(f"Listed {n} objects")
    """

    def __init__(self, per_second: float = 10.0) -> None:
        self._interval = 1.0 / per_second
        self._last = 0.0
        self._width = 0
        self._shown = False

    def update(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        # Pad over the previous line's tail, since \r does not clear it.
        click.echo("\r" + text.ljust(self._width), err=True, nl=False)
        self._width = len(text)
        self._shown = True

    def done(self, text: str | None = None) -> None:
        """Show the final count and end the line."""
        if text is not None:
            self.update(text, force=True)
        if self._shown:
            click.echo(err=True)
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: Any) -> None:
        self.done()


def stdout_console() -> Console:
    """A rich console on the current stdout (click's test runner swaps it), wide when not a terminal."""
    from rich.console import Console

    stream = sys.stdout
    width = None if stream.isatty() else _NON_TTY_WIDTH
    return Console(file=stream, width=width, soft_wrap=False, highlight=False)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                right: Sequence[str] = ()) -> None:
    """Print one rich table on stdout; cell text is never read as rich markup (keys may hold ``[...]``)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
    stdout_console().print(table)


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")
