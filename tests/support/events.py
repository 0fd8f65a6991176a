"""Real-shaped event payloads from ``tests/events``, with ``{name}`` placeholders filled in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str, **values: Any) -> dict[str, Any]:
    """Read ``tests/events/<name>.json`` and replace each ``{key}`` with its value.

    A placeholder standing as a whole JSON value (``"size": {size}``) takes the value as JSON (so
    None, numbers and strings all work); one inside a string (``"arn:aws:s3:::{bucket}"``) takes it
    as text.
    """
    text = (EVENTS / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace(": {" + key + "}", ": " + json.dumps(value))
        text = text.replace("{" + key + "}", str(value))
    return json.loads(text)
