"""Synthetic results of stored-video jobs: the video's metadata and the time-sorted items of each Get* API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rekpipe.simulator._content.images import (
    _celebrity,
    _label,
    _moderation_label,
    face_match,
    text_detections,
)
from rekpipe.simulator._content.shapes import (
    bounding_box,
    f32,
    face_detail,
    percent,
    seeded,
)
from rekpipe.simulator._content.vocabulary import (
    LEAF_LABELS,
    MODERATION,
    TECHNICAL_CUES,
)

if TYPE_CHECKING:
    import random


def video_metadata(video_digest: str, item_count: int) -> dict[str, Any]:
    """``VideoMetadata`` of a video, stable per video (long enough to spread ``item_count`` items)."""
    rng = seeded("video-metadata", video_digest)
    width, height = rng.choice([(1920, 1080), (1280, 720), (3840, 2160), (640, 360)])
    return {
        "Codec": "h264",
        "DurationMillis": max(rng.randint(60_000, 1_200_000), item_count * 200),
        "Format": "QuickTime / MOV",
        "FrameRate": f32(rng.choice([24.0, 25.0, 29.970029830932617, 30.0])),
        "FrameHeight": height,
        "FrameWidth": width,
        "ColorRange": "LIMITED",
    }


def _timestamps(rng: random.Random, count: int, duration_ms: int) -> list[int]:
    return sorted(rng.randrange(0, max(1, duration_ms)) for _ in range(count))


def _smpte(millis: int, fps: float) -> str:
    frames_per_second = round(fps)
    total_frames = int(millis * fps / 1000)
    seconds, frame = divmod(total_frames, frames_per_second)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{second:02d}:{frame:02d}"


def video_items(
    operation: str, rng: random.Random, count: int, metadata: dict[str, Any], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """The result items of a finished job, sorted by time as the Get* APIs return them.

    Parameters
    ----------
    operation: str
        The Start* operation of the job.
    params: dict[str, Any]
        The Start* request (FaceAttributes, SegmentTypes, CollectionId, MinConfidence...).
    """
    duration = metadata["DurationMillis"]
    if operation == "StartSegmentDetection":
        return _segments(rng, count, metadata, params["SegmentTypes"])
    stamps = _timestamps(rng, count, duration)
    people = max(1, count // 10)
    items: list[dict[str, Any]] = []
    for stamp in stamps:
        if operation == "StartLabelDetection":
            name = rng.choice(LEAF_LABELS)
            confidence = rng.uniform(max(50.0, params.get("MinConfidence", 50.0)), 99.9)
            items.append({"Timestamp": stamp, "Label": _label(rng, name, confidence)})
        elif operation == "StartFaceDetection":
            attributes = {params.get("FaceAttributes") or "DEFAULT"}
            items.append({"Timestamp": stamp, "Face": face_detail(rng, attributes, video=True)})
        elif operation == "StartContentModeration":
            top = rng.choice(sorted(MODERATION))
            label = _moderation_label(
                rng.choice(MODERATION[top]), top, 2, rng.uniform(max(50.0, params.get("MinConfidence", 50.0)), 99.0)
            )
            items.append({"Timestamp": stamp, "ModerationLabel": label, "ContentTypes": []})
        elif operation == "StartTextDetection":
            detection = rng.choice(text_detections(rng, line_count=1))
            items.append({"Timestamp": stamp, "TextDetection": detection})
        elif operation == "StartCelebrityRecognition":
            name, gender, celebrity_id = _celebrity(rng)
            face = face_detail(rng, {"ALL"}, video=True)
            items.append(
                {
                    "Timestamp": stamp,
                    "Celebrity": {
                        "Urls": [f"www.example.com/celebrity/{celebrity_id}"],
                        "Name": name,
                        "Id": celebrity_id,
                        "Confidence": percent(rng, 90),
                        "BoundingBox": face["BoundingBox"],
                        "Face": face,
                        "KnownGender": {"Type": gender},
                    },
                }
            )
        elif operation == "StartPersonTracking":
            person: dict[str, Any] = {"Index": rng.randrange(people), "BoundingBox": bounding_box(rng, 0.1, 0.6)}
            if rng.random() < 0.6:
                person["Face"] = face_detail(rng, {"DEFAULT"}, video=True)
            items.append({"Timestamp": stamp, "Person": person})
        elif operation == "StartFaceSearch":
            threshold = params.get("FaceMatchThreshold", 80.0)
            matches = [face_match(rng, params["CollectionId"]) for _ in range(rng.randint(0, 2))]
            items.append(
                {
                    "Timestamp": stamp,
                    "Person": {
                        "Index": rng.randrange(people),
                        "BoundingBox": bounding_box(rng, 0.1, 0.6),
                        "Face": face_detail(rng, {"DEFAULT"}, video=True),
                    },
                    "FaceMatches": sorted(
                        (m for m in matches if m["Similarity"] >= threshold), key=lambda m: -m["Similarity"]
                    ),
                }
            )
        else:  # pragma: no cover - the operation table and this function are kept in step
            raise ValueError(f"no video content for {operation}")
    return items


def _segments(rng: random.Random, count: int, metadata: dict[str, Any], types: list[str]) -> list[dict[str, Any]]:
    """Contiguous segments covering the video; with both types, every fifth is a technical cue."""
    fps = metadata["FrameRate"]
    duration = metadata["DurationMillis"]
    bounds = sorted({0, duration, *(rng.randrange(1, duration) for _ in range(max(0, count - 1)))})
    while len(bounds) < count + 1:  # collisions are rare; top up so the item count is exact
        bounds = sorted({*bounds, rng.randrange(1, duration)})
    segments = []
    shot_index = 0
    for index in range(count):
        start, end = bounds[index], bounds[index + 1] - 1
        kind = types[0] if len(set(types)) == 1 else ("TECHNICAL_CUE" if index % 5 == 0 else "SHOT")
        start_frame, end_frame = int(start * fps / 1000), int(end * fps / 1000)
        segment: dict[str, Any] = {
            "Type": kind,
            "StartTimestampMillis": start,
            "EndTimestampMillis": end,
            "DurationMillis": end - start,
            "StartTimecodeSMPTE": _smpte(start, fps),
            "EndTimecodeSMPTE": _smpte(end, fps),
            "DurationSMPTE": _smpte(end - start, fps),
            "StartFrameNumber": start_frame,
            "EndFrameNumber": end_frame,
            "DurationFrames": end_frame - start_frame + 1,
        }
        if kind == "SHOT":
            segment["ShotSegment"] = {"Index": shot_index, "Confidence": percent(rng, 80)}
            shot_index += 1
        else:
            segment["TechnicalCueSegment"] = {"Type": rng.choice(TECHNICAL_CUES), "Confidence": percent(rng, 80)}
        segments.append(segment)
    return segments
