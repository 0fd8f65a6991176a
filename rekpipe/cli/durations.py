"""Durations on the command line: ``90s``, ``15m``, ``2h``, ``1d`` (a bare number is seconds)."""

from __future__ import annotations

import re
from typing import Any

import click

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``15m``.

    Raises
    ------
    ValueError
        Not a number followed by s, m, h or d.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use a number with s, m, h or d, e.g. 90s, 15m, 2h, 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def describe_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: ``900`` -> ``15m``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Duration(click.ParamType):
    """A click parameter type that reads ``15m`` as 900.0 seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


DURATION = Duration()
