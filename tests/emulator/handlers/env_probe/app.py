"""A handler that reads its settings at module scope, as every function of the project does."""

from __future__ import annotations

import os
import time
from typing import Any

PROBE_TABLE = os.environ["PROBE_TABLE"]
IMPORTED_AT = time.monotonic()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"table": PROBE_TABLE, "importedAt": IMPORTED_AT, "event": event, "function": context.function_name}
