"""Real-shaped event payloads from ``tests/events``, with ``{name}`` placeholders filled in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str, **values: Any) -> dict[str, Any]:
    """Read ``tests/events/<name>.json`` and replace each ``{key}`` with its value.

    Strings replace the inside of a JSON string; other values (None, numbers) are written as JSON.
    """
    text = (EVENTS / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value if isinstance(value, str) else json.dumps(value))
    return json.loads(text)
