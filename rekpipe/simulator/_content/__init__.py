"""Synthetic analysis results shaped exactly like Rekognition's responses.

Nothing here looks at pixels. Every value comes from a `random.Random` seeded with the simulator
seed plus a digest of the input, so the same image or video always yields the same, plausible
answer (real field names and nesting, ratios in [0, 1], confidences as float32-like percentages).

The package splits by concept: ``vocabulary`` (names), ``shapes`` (shared structures), ``images`` (one function per
image API) and ``video`` (stored-video job results). This module re-exports what the simulator uses.
"""

from __future__ import annotations

from rekpipe.simulator._content.images import (
    IMAGE_OPERATIONS,
    detect_faces,
    face_count,
    text_detections,
)
from rekpipe.simulator._content.shapes import (
    face_detail,
    seeded,
    uuid_from,
)
from rekpipe.simulator._content.video import (
    video_items,
    video_metadata,
)
from rekpipe.simulator._content.vocabulary import (
    FACE_MODEL_VERSION,
    LABEL_MODEL_VERSION,
    MAX_TEXT_WORDS,
    MODERATION_MODEL_VERSION,
    PPE_MODEL_VERSION,
    SEGMENT_MODEL_VERSION,
    TEXT_MODEL_VERSION,
)

__all__ = [
    "FACE_MODEL_VERSION",
    "IMAGE_OPERATIONS",
    "LABEL_MODEL_VERSION",
    "MAX_TEXT_WORDS",
    "MODERATION_MODEL_VERSION",
    "PPE_MODEL_VERSION",
    "SEGMENT_MODEL_VERSION",
    "TEXT_MODEL_VERSION",
    "uuid_from",
    "detect_faces",
    "face_count",
    "face_detail",
    "seeded",
    "text_detections",
    "video_items",
    "video_metadata",
]
