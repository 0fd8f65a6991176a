"""The marker that says an output bucket's analysis content is synthetic.

The embedded runtime's Rekognition simulator invents labels, faces and text. Its responses have
the shape of the service's and nothing inside them says they are invented, so the runtime writes
one marker object at the root of the output bucket when it deploys the stack. `rekpipe local run`
copies it to its ``--out`` folder with the rest of the bucket, and ``rekpipe report`` flags every
page of a report built from such a bucket or folder. A deployed stack never writes it.
"""

from __future__ import annotations

from typing import Any

SYNTHETIC_MARKER_KEY = "rekpipe-synthetic.json"
"""Key of the marker at the root of the output bucket (a file of that name at the root of a copy)."""

SYNTHETIC_REASON = ("Analysis content is SYNTHETIC: produced by rekpipe's local Rekognition simulator, which "
                    "invents labels, faces and text and never looks at pixels.")


def marker_document(*, written_at: str, seed: int | None = None) -> dict[str, Any]:
    """The marker's JSON body: what produced the content, and why it must not be read as real results."""
    return {"synthetic": True, "producer": "rekpipe embedded runtime (Rekognition simulator)",
            "reason": SYNTHETIC_REASON, "simulator_seed": seed, "written_at": written_at}


__all__ = ["SYNTHETIC_MARKER_KEY", "SYNTHETIC_REASON", "marker_document"]
