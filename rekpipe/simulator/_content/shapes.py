"""The shared shapes of the simulated answers: seeded generators, float32 confidences, boxes, polygons and
face details (DetectFaces, the face search and the video face APIs all return the same ``FaceDetail``)."""

from __future__ import annotations

import random
import struct
from typing import Any

from rekpipe.simulator._content.vocabulary import (
    EMOTIONS,
    FACE_ATTRIBUTES,
    LANDMARKS,
)


def seeded(*parts: object) -> random.Random:
    """A generator keyed by ``parts`` (str seeding is stable across processes and hash seeds)."""
    return random.Random("|".join(str(part) for part in parts))


def f32(value: float) -> float:
    """Round to float32 precision, as the service's numbers are (99.98765563964844)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def percent(rng: random.Random, low: float, high: float = 99.99) -> float:
    return f32(rng.uniform(low, high))


def uuid_from(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def bounding_box(rng: random.Random, low: float = 0.05, high: float = 0.5) -> dict[str, float]:
    """A box fully inside the frame, as ratios of its width and height."""
    width, height = rng.uniform(low, high), rng.uniform(low, high)
    return {
        "Width": f32(width),
        "Height": f32(height),
        "Left": f32(rng.uniform(0, 1 - width)),
        "Top": f32(rng.uniform(0, 1 - height)),
    }


def polygon(box: dict[str, float]) -> list[dict[str, float]]:
    """The four corners of ``box``, clockwise from top-left."""
    left, top, right, bottom = box["Left"], box["Top"], box["Left"] + box["Width"], box["Top"] + box["Height"]
    return [{"X": f32(x), "Y": f32(y)} for x, y in ((left, top), (right, top), (right, bottom), (left, bottom))]


def _flag(rng: random.Random, p_true: float = 0.3) -> dict[str, Any]:
    return {"Value": rng.random() < p_true, "Confidence": percent(rng, 70)}


def _pose(rng: random.Random) -> dict[str, float]:
    return {"Roll": f32(rng.uniform(-20, 20)), "Yaw": f32(rng.uniform(-40, 40)), "Pitch": f32(rng.uniform(-25, 25))}


def _quality(rng: random.Random) -> dict[str, float]:
    return {"Brightness": f32(rng.uniform(40, 95)), "Sharpness": f32(rng.uniform(50, 98))}


def _landmarks(rng: random.Random, box: dict[str, float], names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "Type": name,
            "X": f32(box["Left"] + box["Width"] * rng.uniform(0.15, 0.85)),
            "Y": f32(box["Top"] + box["Height"] * rng.uniform(0.15, 0.85)),
        }
        for name in names
    ]


def _emotions(rng: random.Random) -> list[dict[str, Any]]:
    weights = [rng.random() ** 3 for _ in EMOTIONS]
    total = sum(weights)
    ranked = sorted(zip(EMOTIONS, weights, strict=True), key=lambda pair: -pair[1])
    return [{"Type": name, "Confidence": f32(100 * weight / total)} for name, weight in ranked]


def face_detail(rng: random.Random, attributes: set[str], *, video: bool = False) -> dict[str, Any]:
    """A ``FaceDetail``: the default members always, plus the requested attribute members.

    Parameters
    ----------
    attributes: set[str]
        Request ``Attributes`` (``DEFAULT``, ``ALL`` or individual names such as ``SMILE``).
    video: bool
        Video results never carry FaceOccluded or EyeDirection (the API documents them as null).
    """
    box = bounding_box(rng, 0.08, 0.35)
    everything = "ALL" in attributes
    wanted = {member for name, member in FACE_ATTRIBUTES.items() if everything or name in attributes}
    if video:
        wanted -= {"FaceOccluded", "EyeDirection"}
    detail: dict[str, Any] = {"BoundingBox": box}
    low_age = rng.randint(3, 70)
    extras: dict[str, Any] = {
        "AgeRange": {"Low": low_age, "High": low_age + rng.randint(4, 12)},
        "Smile": _flag(rng, 0.4),
        "Eyeglasses": _flag(rng, 0.25),
        "Sunglasses": _flag(rng, 0.1),
        "Gender": {"Value": rng.choice(["Male", "Female"]), "Confidence": percent(rng, 80)},
        "Beard": _flag(rng, 0.2),
        "Mustache": _flag(rng, 0.15),
        "EyesOpen": _flag(rng, 0.85),
        "MouthOpen": _flag(rng, 0.3),
        "Emotions": _emotions(rng),
    }
    for member, value in extras.items():
        if member in wanted:
            detail[member] = value
    detail["Landmarks"] = _landmarks(rng, box, LANDMARKS)
    detail["Pose"] = _pose(rng)
    detail["Quality"] = _quality(rng)
    detail["Confidence"] = percent(rng, 95)
    if "FaceOccluded" in wanted:
        detail["FaceOccluded"] = _flag(rng, 0.1)
    if "EyeDirection" in wanted:
        detail["EyeDirection"] = {
            "Yaw": f32(rng.uniform(-30, 30)),
            "Pitch": f32(rng.uniform(-20, 20)),
            "Confidence": percent(rng, 80),
        }
    return detail


def compared_face(rng: random.Random) -> dict[str, Any]:
    """A ``ComparedFace`` (celebrity and unrecognized faces): five landmarks, no attributes but Smile/Emotions."""
    box = bounding_box(rng, 0.08, 0.35)
    return {
        "BoundingBox": box,
        "Confidence": percent(rng, 95),
        "Landmarks": _landmarks(rng, box, LANDMARKS[:5]),
        "Pose": _pose(rng),
        "Quality": _quality(rng),
        "Emotions": _emotions(rng)[:1],
        "Smile": _flag(rng, 0.4),
    }
