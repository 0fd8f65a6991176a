"""From stored documents to what a page shows: manifests, image responses, video summaries and pages.

Pure functions over parsed JSON. They read the shapes Rekognition documents (and the pipeline's
own ``summary.json``), tolerate missing members, and never look at output paths: every location
comes from a manifest's ``outputs``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rekpipe.report.model import Box, CountSeries, ImageView, ManifestEntry, Row, SourceObject, Track, VideoView

COUNT_BINS = 100
"""Bins of a count series across the video: enough to see a scene change, small enough to draw."""
MAX_INDEX_LABELS = 40
"""Label names per object kept in the index for search (the object page has all of them)."""


class NotAManifestError(ValueError):
    """A ``manifest.json`` that is not one of the pipeline's (an S3 Inventory or Batch Operations manifest)."""


def parse_manifest(document: Any) -> ManifestEntry:
    """One pipeline manifest as written by ``rekpipe_shared.outputs.write_manifest``.

    Raises
    ------
    NotAManifestError
        When the document lacks the members every pipeline manifest has (``source.key``, ``status``).
    """
    if not isinstance(document, dict) or not isinstance(document.get("source"), dict) or "status" not in document:
        raise NotAManifestError("not a rekpipe manifest")
    src = document["source"]
    if not src.get("key"):
        raise NotAManifestError("manifest without source.key")
    source = SourceObject(bucket=str(src.get("bucket") or ""), key=str(src["key"]),
                          version_id=_str_or_none(src.get("version_id")), etag=_str_or_none(src.get("etag")),
                          size=src.get("size") if isinstance(src.get("size"), int) else None)
    entry_id = str(document.get("task_id") or "")
    if not entry_id or not entry_id.isalnum():
        entry_id = hashlib.sha256("\0".join(source.identity).encode()).hexdigest()[:40]
    outputs = {str(k): str(v) for k, v in (document.get("outputs") or {}).items() if isinstance(v, str) and v}
    errors = {str(k): {"code": str((v or {}).get("code", "")), "message": str((v or {}).get("message", ""))}
              for k, v in (document.get("errors") or {}).items() if isinstance(v, dict)}
    return ManifestEntry(
        entry_id=entry_id.lower(), source=source, media_type=str(document.get("media_type") or "image"),
        status=str(document["status"]), operations=tuple(str(o) for o in document.get("operations") or ()),
        outputs=outputs, errors=errors, written_at=str(document.get("written_at") or ""),
        run=_str_or_none(document.get("run")), raw=document,
    )


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def newest_per_version(entries: list[ManifestEntry]) -> tuple[list[ManifestEntry], int]:
    """One entry per source object version, the newest run's; also returns how many older runs were dropped."""
    newest: dict[tuple[str, str, str], ManifestEntry] = {}
    for entry in entries:
        current = newest.get(entry.source.identity)
        if current is None or entry.freshness > current.freshness:
            newest[entry.source.identity] = entry
    return list(newest.values()), len(entries) - len(newest)


# --- images --------------------------------------------------------------------------------------
def _ratio(value: Any) -> float:
    """BoundingBox members are ratios; Rekognition returns slightly negative or >1 values at the edges."""
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 0.0


def box_from(kind: str, label: str, confidence: Any, bounding_box: Any) -> Box | None:
    """A drawable box from a Rekognition ``BoundingBox`` (``Left``, ``Top``, ``Width``, ``Height`` ratios)."""
    if not isinstance(bounding_box, dict) or "Width" not in bounding_box:
        return None
    left, top = _ratio(bounding_box.get("Left")), _ratio(bounding_box.get("Top"))
    width = min(_ratio(bounding_box.get("Width")), 1.0 - left)
    height = min(_ratio(bounding_box.get("Height")), 1.0 - top)
    return Box(kind=kind, label=label, confidence=_confidence(confidence), left=left, top=top, width=width,
               height=height)


def _confidence(value: Any) -> float | None:
    try:
        return round(float(value), 2)
    except (TypeError, ValueError):
        return None


def image_view(responses: dict[str, Any]) -> ImageView:
    """Boxes and tables from the stored responses of one image, by API name (``DetectLabels``...)."""
    view = ImageView()
    boxes = view.boxes

    def add(box: Box | None) -> None:
        if box is not None:
            boxes.append(box)

    faces = responses.get("DetectFaces") or {}
    face_rows = []
    for index, face in enumerate(faces.get("FaceDetails") or [], start=1):
        add(box_from("face", f"Face {index}", face.get("Confidence"), face.get("BoundingBox")))
        face_rows.append(Row(f"Face {index}", _confidence(face.get("Confidence")), _face_detail(face)))
    if faces:
        view.tables["Faces"] = face_rows

    labels = responses.get("DetectLabels") or {}
    label_rows = []
    for label in labels.get("Labels") or []:
        name = str(label.get("Name") or "?")
        instances = label.get("Instances") or []
        for instance in instances:
            add(box_from("label", name, instance.get("Confidence"), instance.get("BoundingBox")))
        parents = ", ".join(str(p.get("Name")) for p in label.get("Parents") or [] if p.get("Name"))
        detail = "; ".join(part for part in (f"{len(instances)} boxed" if instances else "",
                                             f"parents: {parents}" if parents else "") if part)
        label_rows.append(Row(name, _confidence(label.get("Confidence")), detail))
    if labels:
        view.tables["Labels"] = label_rows

    moderation = responses.get("DetectModerationLabels") or {}
    if moderation:
        view.tables["Moderation labels"] = [
            Row(str(m.get("Name") or "?"), _confidence(m.get("Confidence")),
                f"under {m['ParentName']}" if m.get("ParentName") else "top level")
            for m in moderation.get("ModerationLabels") or []
        ]

    text = responses.get("DetectText") or {}
    text_rows = []
    for detection in text.get("TextDetections") or []:
        if detection.get("Type", "LINE") != "LINE":
            continue  # words repeat their line's text and box
        value = str(detection.get("DetectedText") or "")
        add(box_from("text", value, detection.get("Confidence"), (detection.get("Geometry") or {}).get("BoundingBox")))
        text_rows.append(Row(value, _confidence(detection.get("Confidence"))))
    if text:
        view.tables["Text"] = text_rows

    celebrities = responses.get("RecognizeCelebrities") or {}
    celebrity_rows = []
    for celebrity in celebrities.get("CelebrityFaces") or []:
        name = str(celebrity.get("Name") or "?")
        add(box_from("celebrity", name, celebrity.get("MatchConfidence"), (celebrity.get("Face") or {}).get(
            "BoundingBox")))
        celebrity_rows.append(Row(name, _confidence(celebrity.get("MatchConfidence")),
                                  " ".join(str(u) for u in celebrity.get("Urls") or [])))
    if celebrities:
        unrecognized = len(celebrities.get("UnrecognizedFaces") or [])
        if unrecognized:
            celebrity_rows.append(Row("Unrecognized faces", None, str(unrecognized)))
        view.tables["Celebrities"] = celebrity_rows

    ppe = responses.get("DetectProtectiveEquipment") or {}
    ppe_rows = []
    for person in ppe.get("Persons") or []:
        person_id = person.get("Id")
        add(box_from("person", f"Person {person_id}", person.get("Confidence"), person.get("BoundingBox")))
        for part in person.get("BodyParts") or []:
            for equipment in part.get("EquipmentDetections") or []:
                kind = str(equipment.get("Type") or "?")
                covers = (equipment.get("CoversBodyPart") or {}).get("Value")
                add(box_from("ppe", kind, equipment.get("Confidence"), equipment.get("BoundingBox")))
                ppe_rows.append(Row(f"Person {person_id}: {kind}", _confidence(equipment.get("Confidence")),
                                    f"{part.get('Name', '?')}, covers it: {'yes' if covers else 'no'}"))
    if ppe:
        summary = ppe.get("Summary") or {}
        for member in ("PersonsWithRequiredEquipment", "PersonsWithoutRequiredEquipment", "PersonsIndeterminate"):
            if member in summary:
                ppe_rows.append(Row(member, None, ", ".join(str(i) for i in summary[member]) or "none"))
        view.tables["Protective equipment"] = ppe_rows

    search = responses.get("SearchFacesByImage") or {}
    if search:
        matches = search.get("FaceMatches") or []
        top = (matches[0].get("Face") or {}) if matches else {}
        add(box_from("face_search", str(top.get("ExternalImageId") or top.get("FaceId") or "searched face"),
                     search.get("SearchedFaceConfidence"), search.get("SearchedFaceBoundingBox")))
        view.tables["Face matches"] = [
            Row(str((m.get("Face") or {}).get("ExternalImageId") or (m.get("Face") or {}).get("FaceId") or "?"),
                _confidence(m.get("Similarity")), "similarity")
            for m in matches
        ]

    custom = responses.get("DetectCustomLabels") or {}
    if custom:
        rows = []
        for label in custom.get("CustomLabels") or []:
            name = str(label.get("Name") or "?")
            add(box_from("custom", name, label.get("Confidence"), (label.get("Geometry") or {}).get("BoundingBox")))
            rows.append(Row(name, _confidence(label.get("Confidence"))))
        view.tables["Custom labels"] = rows
    return view


def _face_detail(face: dict[str, Any]) -> str:
    parts = []
    age = face.get("AgeRange") or {}
    if age:
        parts.append(f"age {age.get('Low', '?')}-{age.get('High', '?')}")
    emotions = sorted(face.get("Emotions") or [], key=lambda e: -(e.get("Confidence") or 0))
    if emotions:
        parts.append(str(emotions[0].get("Type", "")).lower())
    for attribute in ("Smile", "Eyeglasses", "Sunglasses", "Beard", "Mustache"):
        value = face.get(attribute) or {}
        if value.get("Value"):
            parts.append(attribute.lower())
    return ", ".join(parts)


def image_labels(responses: dict[str, Any]) -> list[str]:
    """Names a search by label should find: labels, moderation labels, celebrities, custom labels, text lines."""
    names: list[str] = []
    for api, member, field_ in (("DetectLabels", "Labels", "Name"), ("DetectModerationLabels", "ModerationLabels",
                                                                        "Name"),
                                ("RecognizeCelebrities", "CelebrityFaces", "Name"),
                                ("DetectCustomLabels", "CustomLabels", "Name")):
        for item in (responses.get(api) or {}).get(member) or []:
            if item.get(field_):
                names.append(str(item[field_]))
    if (responses.get("DetectFaces") or {}).get("FaceDetails"):
        names.append("Face")
    return _distinct(names)


def _distinct(names: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return list(seen)[:MAX_INDEX_LABELS]


# --- videos --------------------------------------------------------------------------------------
_NAMED_GROUPS = (("labels", "Labels"), ("moderation_labels", "Moderation"), ("celebrities", "Celebrities"),
                 ("text", "Text"), ("matched_faces", "Face matches"))


def _ranges(values: Any) -> tuple[tuple[int, int], ...]:
    ranges = []
    for pair in values or []:
        try:
            start, end = int(pair[0]), int(pair[1])
        except (TypeError, ValueError, IndexError):
            continue
        ranges.append((start, max(start, end)))
    return tuple(ranges)


def video_view(summaries: dict[str, Any], statuses: dict[str, str],
               pages: dict[str, list[dict[str, Any]]] | None = None) -> VideoView:
    """Timeline and counts of one video from its ``summary.json`` documents (by output name) and Get* pages.

    Parameters
    ----------
    summaries: dict[str, Any]
        Output name (``StartLabelDetection``...) -> the pipeline's summary of that operation.
    statuses: dict[str, str]
        Output name -> SUCCEEDED or FAILED (the manifest's outputs and errors).
    pages: dict[str, list[dict]] | None
        Output name -> its stored Get* pages, for counts the summary does not keep (faces per moment).
    """
    view = VideoView(operations=dict(statuses))
    for summary in summaries.values():
        if isinstance(summary, dict) and isinstance(summary.get("video"), dict) and not view.metadata:
            view.metadata = summary["video"]
    duration = int(view.metadata.get("DurationMillis") or 0)
    for summary in summaries.values():
        if not isinstance(summary, dict):
            continue
        for member, group in _NAMED_GROUPS:
            for item in summary.get(member) or []:
                if isinstance(item, dict) and item.get("name"):
                    view.tracks.append(Track(group, str(item["name"]), _confidence(item.get("max_confidence")),
                                             _ranges(item.get("time_ranges_ms"))))
        faces = summary.get("faces")
        if isinstance(faces, dict) and faces.get("time_ranges_ms"):
            view.tracks.append(Track("Faces", "Faces on screen", None, _ranges(faces["time_ranges_ms"])))
        people = summary.get("people")
        if isinstance(people, dict):
            for item in people.get("tracks") or []:
                if isinstance(item, dict) and item.get("name"):
                    view.tracks.append(Track("People", str(item["name"]), None, _ranges(item.get("time_ranges_ms"))))
        for segment in summary.get("segments") or []:
            if not isinstance(segment, dict) or segment.get("start_ms") is None:
                continue
            kind = str(segment.get("type") or "SEGMENT")
            name = "Shot" if kind == "SHOT" else f"Technical cue: {segment.get('detail') or kind}"
            start = int(segment["start_ms"])
            view.tracks.append(Track("Segments", name, None, ((start, int(segment.get("end_ms") or start)),)))
    view.tracks = _merge_segment_tracks(view.tracks)
    ends = [end for track in view.tracks for _, end in track.ranges]
    view.duration_ms = max([duration, *ends]) if ends or duration else 0
    for name, items in (pages or {}).items():
        series = count_series(name, items, view.duration_ms)
        if series is not None:
            view.counts.append(series)
    for summary in summaries.values():
        people = summary.get("people") if isinstance(summary, dict) else None
        if isinstance(people, dict) and people.get("distinct") is not None and not any(
                s.name == "People" for s in view.counts):
            view.counts.append(CountSeries("People", 0, (), total=int(people["distinct"])))
    return view


def _merge_segment_tracks(tracks: list[Track]) -> list[Track]:
    """One row per segment kind (all shots on one row), keeping every other track as it is."""
    merged: dict[str, list[tuple[int, int]]] = {}
    others = []
    for track in tracks:
        if track.group == "Segments":
            merged.setdefault(track.name, []).extend(track.ranges)
        else:
            others.append(track)
    return others + [Track("Segments", name, None, tuple(sorted(ranges))) for name, ranges in sorted(merged.items())]


_COUNTED = {"Faces": ("Faces", "Face"), "Persons": ("People", "Person")}


def count_series(output: str, page_documents: list[dict[str, Any]], duration_ms: int) -> CountSeries | None:
    """Faces (or distinct people) seen per time bin, from Get*Detection / GetFaceSearch pages.

    The summary keeps when faces were seen, not how many at once; the pages have one item per face
    per sampled moment, so the most faces at one moment of a bin is the bin's count.
    """
    member = next((m for m in _COUNTED if any(m in (page or {}) for page in page_documents)), None)
    if member is None or duration_ms <= 0:
        return None
    name, item_key = _COUNTED[member]
    bin_ms = max(1, -(-duration_ms // COUNT_BINS))
    at_moment: dict[int, set[Any]] = {}
    for page in page_documents:
        for position, item in enumerate(page.get(member) or []):
            stamp = int(item.get("Timestamp") or 0)
            index = (item.get(item_key) or {}).get("Index") if item_key == "Person" else None
            at_moment.setdefault(stamp, set()).add(index if index is not None else (id(page), position))
    counts = [0] * COUNT_BINS
    for stamp, seen in at_moment.items():
        slot = min(COUNT_BINS - 1, stamp // bin_ms)
        counts[slot] = max(counts[slot], len(seen))
    return CountSeries(name, bin_ms, tuple(counts), total=None)


def video_labels(view: VideoView) -> list[str]:
    """Names a search by label should find on a video: every named track except segments."""
    return _distinct([t.name for t in view.tracks if t.group in ("Labels", "Moderation", "Celebrities",
                                                                    "Face matches")])


__all__ = ["COUNT_BINS", "NotAManifestError", "box_from", "count_series", "image_labels", "image_view",
           "newest_per_version", "parse_manifest", "video_labels", "video_view"]
