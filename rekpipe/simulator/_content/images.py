"""Synthetic answers of the synchronous image APIs (DetectLabels ... DetectCustomLabels), by operation name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rekpipe.simulator._content.shapes import (
    bounding_box,
    compared_face,
    f32,
    face_detail,
    percent,
    polygon,
    seeded,
    uuid_from,
)
from rekpipe.simulator._content.vocabulary import (
    CELEBRITIES,
    CUSTOM_LABELS,
    FACE_MODEL_VERSION,
    LABEL_MODEL_VERSION,
    LABELS,
    LEAF_LABELS,
    MAX_TEXT_WORDS,
    MODERATION,
    MODERATION_MODEL_VERSION,
    PPE_MODEL_VERSION,
    PPE_PARTS,
    TEXT_MODEL_VERSION,
    WORDS,
)

if TYPE_CHECKING:
    import random


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
                "MatchConfidence": percent(rng, 90),
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
                        "Confidence": percent(rng, 60),
                        "Type": PPE_PARTS[part],
                        "CoversBodyPart": {"Confidence": percent(rng, 60), "Value": rng.random() < 0.85},
                    }
                )
            body_parts.append({"Name": part, "Confidence": percent(rng, 60), "EquipmentDetections": detections})
        persons.append(
            {
                "BodyParts": body_parts,
                "BoundingBox": bounding_box(rng, 0.2, 0.6),
                "Confidence": percent(rng, 60),
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
        "Similarity": percent(rng, 70),
        "Face": {
            "FaceId": uuid_from(face_rng),
            "BoundingBox": bounding_box(face_rng, 0.1, 0.4),
            "ImageId": uuid_from(face_rng),
            "ExternalImageId": f"person-{face_rng.randrange(1000):04d}",
            "Confidence": percent(face_rng, 99),
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
        "SearchedFaceConfidence": percent(rng, 99),
        "FaceMatches": matches[:max_faces],
        "FaceModelVersion": FACE_MODEL_VERSION,
    }


def detect_custom_labels(rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    """DetectCustomLabels: 0-4 labels, some with geometry; honours MinConfidence and MaxResults."""
    min_confidence = params.get("MinConfidence", 50.0)
    labels = []
    for _ in range(rng.randint(0, 4)):
        label: dict[str, Any] = {"Name": rng.choice(CUSTOM_LABELS), "Confidence": percent(rng, 30)}
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
