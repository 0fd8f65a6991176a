"""Synthetic analysis results shaped exactly like Rekognition's responses.

Nothing here looks at pixels. Every value comes from a `random.Random` seeded with the simulator
seed plus a digest of the input, so the same image or video always yields the same, plausible
answer (real field names and nesting, ratios in [0, 1], confidences as float32-like percentages).
"""

from __future__ import annotations

import random
import struct
from typing import Any

LABEL_MODEL_VERSION = "3.0"
FACE_MODEL_VERSION = "7.0"
MODERATION_MODEL_VERSION = "7.0"
TEXT_MODEL_VERSION = "3.0"
PPE_MODEL_VERSION = "1.0"
SEGMENT_MODEL_VERSION = "1.0"
MAX_TEXT_WORDS = 100

# name -> (parents, aliases, categories, has bounding-box instances)
LABELS: dict[str, tuple[list[str], list[str], list[str], bool]] = {
    "Person": ([], ["Human"], ["Person Description"], True),
    "Dog": (["Animal", "Canine", "Mammal", "Pet"], [], ["Animals and Pets"], True),
    "Cat": (["Animal", "Mammal", "Pet"], [], ["Animals and Pets"], True),
    "Car": (["Transportation", "Vehicle"], ["Automobile"], ["Vehicles and Automotive"], True),
    "Bicycle": (["Transportation", "Vehicle"], ["Bike"], ["Hobbies and Interests"], True),
    "Tree": (["Plant"], [], ["Nature and Outdoors"], True),
    "Building": (["Architecture"], [], ["Buildings and Architecture"], True),
    "Chair": (["Furniture"], [], ["Furniture and Furnishings"], True),
    "Bottle": ([], [], ["Kitchen and Dining"], True),
    "Laptop": (["Computer", "Electronics", "Pc"], [], ["Technology and Computing"], True),
    "Road": ([], [], ["Transport and Logistics"], False),
    "Sky": (["Nature", "Outdoors"], [], ["Nature and Outdoors"], False),
    "Grass": (["Plant"], [], ["Nature and Outdoors"], False),
    "City": (["Urban"], ["Town"], ["Buildings and Architecture"], False),
    "Food": ([], [], ["Food and Beverage"], False),
    # Parents are labels too; the service returns them alongside their children.
    "Animal": ([], [], ["Animals and Pets"], False),
    "Mammal": (["Animal"], [], ["Animals and Pets"], False),
    "Pet": (["Animal"], [], ["Animals and Pets"], False),
    "Canine": (["Animal", "Mammal"], [], ["Animals and Pets"], False),
    "Vehicle": (["Transportation"], [], ["Vehicles and Automotive"], False),
    "Transportation": ([], [], ["Vehicles and Automotive"], False),
    "Plant": ([], [], ["Plants and Flowers"], False),
    "Architecture": ([], [], ["Buildings and Architecture"], False),
    "Furniture": ([], [], ["Furniture and Furnishings"], False),
    "Computer": (["Electronics"], [], ["Technology and Computing"], False),
    "Electronics": ([], [], ["Technology and Computing"], False),
    "Pc": (["Computer", "Electronics"], ["Personal Computer"], ["Technology and Computing"], False),
    "Nature": ([], [], ["Nature and Outdoors"], False),
    "Outdoors": ([], [], ["Nature and Outdoors"], False),
    "Urban": ([], [], ["Buildings and Architecture"], False),
}
LEAF_LABELS = [
    name
    for name in LABELS
    if name
    in (
        "Person",
        "Dog",
        "Cat",
        "Car",
        "Bicycle",
        "Tree",
        "Building",
        "Chair",
        "Bottle",
        "Laptop",
        "Road",
        "Sky",
        "Grass",
        "City",
        "Food",
    )
]
MODERATION: dict[str, list[str]] = {
    "Violence": ["Weapons", "Physical Violence"],
    "Alcohol": ["Alcoholic Beverages", "Drinking"],
    "Drugs & Tobacco": ["Smoking"],
    "Rude Gestures": ["Middle Finger"],
    "Visually Disturbing": ["Explosions and Blasts"],
}
WORDS = [
    "EXIT",
    "STOP",
    "OPEN",
    "SALE",
    "MAIN",
    "STREET",
    "COFFEE",
    "PARKING",
    "ONLY",
    "WELCOME",
    "NO",
    "ENTRY",
    "CAUTION",
    "WET",
    "FLOOR",
    "PUSH",
    "PULL",
    "TICKETS",
    "24H",
    "2024",
    "SUNDAY",
]
# Deliberately fictional: the simulator must not put real people's names in test fixtures.
CELEBRITIES = [
    ("Alex Example", "Female"),
    ("Sam Placeholder", "Male"),
    ("Jordan Synthetic", "Nonbinary"),
    ("Casey Simulated", "Female"),
    ("Riley Fixture", "Male"),
    ("Morgan Mockwell", "Female"),
]
CUSTOM_LABELS = ["defect", "scratch", "dent", "crack", "ok"]
EMOTIONS = ["HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "FEAR"]
LANDMARKS = [
    "eyeLeft",
    "eyeRight",
    "nose",
    "mouthLeft",
    "mouthRight",
    "leftEyeBrowLeft",
    "leftEyeBrowRight",
    "leftEyeBrowUp",
    "rightEyeBrowLeft",
    "rightEyeBrowRight",
    "rightEyeBrowUp",
    "leftEyeLeft",
    "leftEyeRight",
    "leftEyeUp",
    "leftEyeDown",
    "rightEyeLeft",
    "rightEyeRight",
    "rightEyeUp",
    "rightEyeDown",
    "noseLeft",
    "noseRight",
    "mouthUp",
    "mouthDown",
    "leftPupil",
    "rightPupil",
    "upperJawlineLeft",
    "midJawlineLeft",
    "chinBottom",
    "midJawlineRight",
    "upperJawlineRight",
]
FACE_ATTRIBUTES = {
    "AGE_RANGE": "AgeRange",
    "BEARD": "Beard",
    "EMOTIONS": "Emotions",
    "EYE_DIRECTION": "EyeDirection",
    "EYEGLASSES": "Eyeglasses",
    "EYES_OPEN": "EyesOpen",
    "GENDER": "Gender",
    "MOUTH_OPEN": "MouthOpen",
    "MUSTACHE": "Mustache",
    "FACE_OCCLUDED": "FaceOccluded",
    "SMILE": "Smile",
    "SUNGLASSES": "Sunglasses",
}
TECHNICAL_CUES = ["ColorBars", "OpeningCredits", "Content", "BlackFrames", "StudioLogo", "Slate", "EndCredits"]
PPE_PARTS = {"FACE": "FACE_COVER", "HEAD": "HEAD_COVER", "LEFT_HAND": "HAND_COVER", "RIGHT_HAND": "HAND_COVER"}


def seeded(*parts: object) -> random.Random:
    """A generator keyed by ``parts`` (str seeding is stable across processes and hash seeds)."""
    return random.Random("|".join(str(part) for part in parts))


def f32(value: float) -> float:
    """Round to float32 precision, as the service's numbers are (99.98765563964844)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _pct(rng: random.Random, low: float, high: float = 99.99) -> float:
    return f32(rng.uniform(low, high))


def _uuid(rng: random.Random) -> str:
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
    return {"Value": rng.random() < p_true, "Confidence": _pct(rng, 70)}


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
        "Gender": {"Value": rng.choice(["Male", "Female"]), "Confidence": _pct(rng, 80)},
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
    detail["Confidence"] = _pct(rng, 95)
    if "FaceOccluded" in wanted:
        detail["FaceOccluded"] = _flag(rng, 0.1)
    if "EyeDirection" in wanted:
        detail["EyeDirection"] = {
            "Yaw": f32(rng.uniform(-30, 30)),
            "Pitch": f32(rng.uniform(-20, 20)),
            "Confidence": _pct(rng, 80),
        }
    return detail


def compared_face(rng: random.Random) -> dict[str, Any]:
    """A ``ComparedFace`` (celebrity and unrecognized faces): five landmarks, no attributes but Smile/Emotions."""
    box = bounding_box(rng, 0.08, 0.35)
    return {
        "BoundingBox": box,
        "Confidence": _pct(rng, 95),
        "Landmarks": _landmarks(rng, box, LANDMARKS[:5]),
        "Pose": _pose(rng),
        "Quality": _quality(rng),
        "Emotions": _emotions(rng)[:1],
        "Smile": _flag(rng, 0.4),
    }


# ---------------------------------------------------------------------------------------------
# Image operations
# ---------------------------------------------------------------------------------------------


def _label(rng: random.Random, name: str, confidence: float, with_instances: bool = True) -> dict[str, Any]:
    parents, aliases, categories, has_instances = LABELS[name]
    instances = []
    if has_instances and with_instances:
        instances = [
            {"BoundingBox": bounding_box(rng), "Confidence": f32(max(50.0, confidence - rng.uniform(0, 8)))}
            for _ in range(rng.randint(1, 3))
        ]
    return {
        "Name": name,
        "Confidence": f32(confidence),
        "Instances": instances,
        "Parents": [{"Name": parent} for parent in parents],
        "Aliases": [{"Name": alias} for alias in aliases],
        "Categories": [{"Name": category} for category in categories],
    }


def _label_set(rng: random.Random, count: int) -> list[tuple[str, float]]:
    """Leaf labels plus every ancestor, each parent at least as confident as its children."""
    confidences: dict[str, float] = {}
    for name in rng.sample(LEAF_LABELS, count):
        confidence = rng.uniform(52, 99.9)
        for label in [name, *LABELS[name][0]]:
            confidences[label] = max(confidences.get(label, 0.0), min(99.99, confidence + (label != name) * 0.05))
    return sorted(confidences.items(), key=lambda pair: (-pair[1], pair[0]))


def _filters_allow(name: str, settings: dict[str, Any]) -> bool:
    general = settings.get("GeneralLabels") or {}
    include, exclude = general.get("LabelInclusionFilters"), general.get("LabelExclusionFilters") or []
    categories = set(LABELS[name][2])
    cat_include = general.get("LabelCategoryInclusionFilters")
    cat_exclude = set(general.get("LabelCategoryExclusionFilters") or [])
    return (
        (not include or name in include)
        and name not in exclude
        and (not cat_include or bool(categories & set(cat_include)))
        and not categories & cat_exclude
    )


def _colors(rng: random.Random, count: int) -> list[dict[str, Any]]:
    palette = [
        ("black", "black", (20, 20, 20)),
        ("white", "white", (240, 240, 240)),
        ("grey", "gray", (128, 128, 128)),
        ("blue", "steelblue", (70, 130, 180)),
        ("green", "forestgreen", (34, 139, 34)),
        ("red", "firebrick", (178, 34, 34)),
        ("yellow", "gold", (255, 215, 0)),
        ("brown", "sienna", (160, 82, 45)),
    ]
    chosen = rng.sample(palette, min(count, len(palette)))
    shares = sorted((rng.random() for _ in chosen), reverse=True)
    total = sum(shares) or 1.0
    return [
        {
            "Red": r,
            "Blue": b,
            "Green": g,
            "HexCode": f"#{r:02x}{g:02x}{b:02x}",
            "CSSColor": css,
            "SimplifiedColor": simple,
            "PixelPercent": f32(100 * share / total),
        }
        for (simple, css, (r, g, b)), share in zip(chosen, shares, strict=True)
    ]


def detect_labels(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """DetectLabels: honours MaxLabels, MinConfidence, Features and the label/category filters."""
    min_confidence = params.get("MinConfidence", 55.0)
    max_labels = params.get("MaxLabels")
    features = params.get("Features") or ["GENERAL_LABELS"]
    settings = params.get("Settings") or {}
    labels = []
    for name, confidence in _label_set(rng, rng.randint(1, 5)):
        label = _label(rng, name, confidence)
        if confidence >= min_confidence and _filters_allow(name, settings):
            labels.append(label)
    if max_labels is not None:
        labels = labels[:max_labels]
    response: dict[str, Any] = {"Labels": labels if "GENERAL_LABELS" in features else []}
    if "IMAGE_PROPERTIES" in features:
        max_colors = (settings.get("ImageProperties") or {}).get("MaxDominantColors", 10)

        def quality() -> dict[str, float]:
            return {key: f32(rng.uniform(30, 95)) for key in ("Brightness", "Sharpness", "Contrast")}

        response["ImageProperties"] = {
            "Quality": quality(),
            "DominantColors": _colors(rng, max_colors),
            "Foreground": {"Quality": quality(), "DominantColors": _colors(rng, max_colors)},
            "Background": {"Quality": quality(), "DominantColors": _colors(rng, max_colors)},
        }
    response["LabelModelVersion"] = LABEL_MODEL_VERSION
    return response


def face_count(seed: int, image_digest: str) -> int:
    """How many faces an image has (0-3, one image in ten has none): the same for every operation,
    so DetectFaces and SearchFacesByImage agree about a face-less image."""
    return seeded(seed, "faces-in-image", image_digest).choices([0, 1, 2, 3], weights=[1, 5, 3, 1])[0]


def detect_faces(rng: random.Random, params: dict[str, Any], faces: int | None = None) -> dict[str, Any]:
    """DetectFaces: ``faces`` faces (0-3); ``Attributes`` picks the members as the service does."""
    attributes = set(params.get("Attributes") or ["DEFAULT"])
    count = rng.choices([0, 1, 2, 3], weights=[1, 5, 3, 1])[0] if faces is None else faces
    return {"FaceDetails": [face_detail(rng, attributes) for _ in range(count)]}


def _moderation(rng: random.Random) -> list[tuple[str, str, int, float]]:
    found: list[tuple[str, str, int, float]] = []
    if rng.random() < 0.6:  # most images are unremarkable
        return found
    for top in rng.sample(sorted(MODERATION), rng.randint(1, 2)):
        child = rng.choice(MODERATION[top])
        confidence = rng.uniform(50, 99)
        found.append((child, top, 2, confidence))
        found.append((top, "", 1, min(99.99, confidence + 0.5)))
    return sorted(found, key=lambda item: -item[3])


def _moderation_label(name: str, parent: str, level: int, confidence: float) -> dict[str, Any]:
    return {"Confidence": f32(confidence), "Name": name, "ParentName": parent, "TaxonomyLevel": level}


def detect_moderation_labels(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """DetectModerationLabels: usually none; otherwise level-2 labels with their level-1 parents."""
    min_confidence = params.get("MinConfidence", 50.0)
    labels = [_moderation_label(*item) for item in _moderation(rng) if item[3] >= min_confidence]
    return {"ModerationLabels": labels, "ModerationModelVersion": MODERATION_MODEL_VERSION, "ContentTypes": []}


def text_detections(rng: random.Random, line_count: int | None = None) -> list[dict[str, Any]]:
    """LINE detections then their WORDs (``ParentId`` = line ``Id``), capped at 100 words like the service.

    Parameters
    ----------
    line_count: int | None
        Force this many lines (tests use it to exercise the cap); default is 0-4, or 20-30 lines on
        the occasional text-dense image.
    """
    if line_count is None:
        line_count = rng.randint(20, 30) if rng.random() < 0.05 else rng.randint(0, 4)
    lines: list[list[str]] = []
    total = 0
    for _ in range(line_count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
        if total + len(words) > MAX_TEXT_WORDS:
            words = words[: MAX_TEXT_WORDS - total]
        if not words:
            break
        lines.append(words)
        total += len(words)
    line_items, word_items = [], []
    next_id = len(lines)
    for line_id, words in enumerate(lines):
        box = bounding_box(rng, 0.03, 0.08)
        box["Width"] = f32(min(0.9, 0.04 * len(words) + 0.02))
        box["Left"] = f32(rng.uniform(0, 1 - box["Width"]))
        confidences = [rng.uniform(85, 99.9) for _ in words]
        line_items.append(
            {
                "DetectedText": " ".join(words),
                "Type": "LINE",
                "Id": line_id,
                "Confidence": f32(sum(confidences) / len(confidences)),
                "Geometry": {"BoundingBox": box, "Polygon": polygon(box)},
            }
        )
        step = box["Width"] / len(words)
        for index, (word, confidence) in enumerate(zip(words, confidences, strict=True)):
            word_box = {
                "Width": f32(step * 0.9),
                "Height": box["Height"],
                "Left": f32(box["Left"] + index * step),
                "Top": box["Top"],
            }
            word_items.append(
                {
                    "DetectedText": word,
                    "Type": "WORD",
                    "Id": next_id,
                    "ParentId": line_id,
                    "Confidence": f32(confidence),
                    "Geometry": {"BoundingBox": word_box, "Polygon": polygon(word_box)},
                }
            )
            next_id += 1
    return line_items + word_items


def detect_text(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """DetectText: honours ``Filters.WordFilter.MinConfidence``."""
    detections = text_detections(rng)
    word_filter = (params.get("Filters") or {}).get("WordFilter") or {}
    min_confidence = word_filter.get("MinConfidence", 0.0)
    detections = [d for d in detections if d["Type"] == "LINE" or d["Confidence"] >= min_confidence]
    return {"TextDetections": detections, "TextModelVersion": TEXT_MODEL_VERSION}


def _celebrity(rng: random.Random) -> tuple[str, str, str]:
    index = rng.randrange(len(CELEBRITIES))
    name, gender = CELEBRITIES[index]
    celebrity_id = seeded("celebrity", name).choice("123456789abcdefghjkmnpqrstuvwxyz") + f"{index:07d}"
    return name, gender, celebrity_id


def recognize_celebrities(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """RecognizeCelebrities: 0-2 (fictional) celebrities and 0-2 unrecognized faces."""
    del params
    celebrities = []
    for _ in range(rng.choices([0, 1, 2], weights=[3, 4, 1])[0]):
        name, gender, celebrity_id = _celebrity(rng)
        celebrities.append(
            {
                "Urls": [f"www.example.com/celebrity/{celebrity_id}"],
                "Name": name,
                "Id": celebrity_id,
                "Face": compared_face(rng),
                "MatchConfidence": _pct(rng, 90),
                "KnownGender": {"Type": gender},
            }
        )
    unrecognized = [compared_face(rng) for _ in range(rng.randint(0, 2))]
    return {"CelebrityFaces": celebrities, "UnrecognizedFaces": unrecognized}


def detect_protective_equipment(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """DetectProtectiveEquipment, with ``Summary`` computed from ``SummarizationAttributes`` if given."""
    persons = []
    for person_id in range(rng.choices([0, 1, 2, 3], weights=[1, 4, 3, 2])[0]):
        body_parts = []
        for part in [p for p in PPE_PARTS if rng.random() < 0.85]:
            detections = []
            if rng.random() < 0.6:
                detections.append(
                    {
                        "BoundingBox": bounding_box(rng, 0.03, 0.15),
                        "Confidence": _pct(rng, 60),
                        "Type": PPE_PARTS[part],
                        "CoversBodyPart": {"Confidence": _pct(rng, 60), "Value": rng.random() < 0.85},
                    }
                )
            body_parts.append({"Name": part, "Confidence": _pct(rng, 60), "EquipmentDetections": detections})
        persons.append(
            {
                "BodyParts": body_parts,
                "BoundingBox": bounding_box(rng, 0.2, 0.6),
                "Confidence": _pct(rng, 60),
                "Id": person_id,
            }
        )
    response: dict[str, Any] = {"ProtectiveEquipmentModelVersion": PPE_MODEL_VERSION, "Persons": persons}
    summarize = params.get("SummarizationAttributes")
    if summarize:
        response["Summary"] = _ppe_summary(persons, summarize["MinConfidence"], summarize["RequiredEquipmentTypes"])
    return response


def _ppe_summary(persons: list[dict[str, Any]], min_confidence: float, required: list[str]) -> dict[str, list[int]]:
    with_all, without, indeterminate = [], [], []
    for person in persons:
        parts = {part["Name"]: part for part in person["BodyParts"]}
        verdict = "with"
        if person["Confidence"] < min_confidence:
            verdict = "indeterminate"
        for equipment in required:
            for part_name in [name for name, kind in PPE_PARTS.items() if kind == equipment]:
                part = parts.get(part_name)
                if part is None or part["Confidence"] < min_confidence:
                    verdict = "indeterminate"
                    continue
                covered = any(
                    d["Type"] == equipment and d["Confidence"] >= min_confidence and d["CoversBodyPart"]["Value"]
                    for d in part["EquipmentDetections"]
                )
                if not covered and verdict == "with":
                    verdict = "without"
        {"with": with_all, "without": without, "indeterminate": indeterminate}[verdict].append(person["Id"])
    return {
        "PersonsWithRequiredEquipment": with_all,
        "PersonsWithoutRequiredEquipment": without,
        "PersonsIndeterminate": indeterminate,
    }


def face_match(rng: random.Random, collection_id: str) -> dict[str, Any]:
    """A ``FaceMatch``: a face from the collection and how similar it is."""
    face_rng = seeded("collection-face", collection_id, rng.randrange(50))  # a small, stable gallery
    return {
        "Similarity": _pct(rng, 70),
        "Face": {
            "FaceId": _uuid(face_rng),
            "BoundingBox": bounding_box(face_rng, 0.1, 0.4),
            "ImageId": _uuid(face_rng),
            "ExternalImageId": f"person-{face_rng.randrange(1000):04d}",
            "Confidence": _pct(face_rng, 99),
            "IndexFacesModelVersion": FACE_MODEL_VERSION,
        },
    }


def search_faces_by_image(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """SearchFacesByImage: the largest face is searched; honours FaceMatchThreshold and MaxFaces."""
    threshold = params.get("FaceMatchThreshold", 80.0)
    max_faces = params.get("MaxFaces", 80)
    matches = [face_match(rng, params["CollectionId"]) for _ in range(rng.randint(0, 5))]
    matches = sorted((m for m in matches if m["Similarity"] >= threshold), key=lambda m: -m["Similarity"])
    return {
        "SearchedFaceBoundingBox": bounding_box(rng, 0.1, 0.4),
        "SearchedFaceConfidence": _pct(rng, 99),
        "FaceMatches": matches[:max_faces],
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


def detect_custom_labels(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """DetectCustomLabels: 0-4 labels, some with geometry; honours MinConfidence and MaxResults."""
    min_confidence = params.get("MinConfidence", 50.0)
    labels = []
    for _ in range(rng.randint(0, 4)):
        label: dict[str, Any] = {"Name": rng.choice(CUSTOM_LABELS), "Confidence": _pct(rng, 30)}
        if rng.random() < 0.7:
            box = bounding_box(rng)
            label["Geometry"] = {"BoundingBox": box, "Polygon": polygon(box)}
        labels.append(label)
    labels = [label for label in labels if label["Confidence"] >= min_confidence]
    labels.sort(key=lambda label: -label["Confidence"])
    if params.get("MaxResults") is not None:
        labels = labels[: params["MaxResults"]]
    return {"CustomLabels": labels}


IMAGE_OPERATIONS = {
    "DetectLabels": detect_labels,
    "DetectFaces": detect_faces,
    "DetectModerationLabels": detect_moderation_labels,
    "DetectText": detect_text,
    "RecognizeCelebrities": recognize_celebrities,
    "DetectProtectiveEquipment": detect_protective_equipment,
    "SearchFacesByImage": search_faces_by_image,
    "DetectCustomLabels": detect_custom_labels,
}

# ---------------------------------------------------------------------------------------------
# Stored-video results
# ---------------------------------------------------------------------------------------------


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
                        "Confidence": _pct(rng, 90),
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
            segment["ShotSegment"] = {"Index": shot_index, "Confidence": _pct(rng, 80)}
            shot_index += 1
        else:
            segment["TechnicalCueSegment"] = {"Type": rng.choice(TECHNICAL_CUES), "Confidence": _pct(rng, 80)}
        segments.append(segment)
    return segments
