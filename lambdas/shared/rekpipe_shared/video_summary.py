"""Per-operation summaries of stored-video results, built page by page and resumable.

A 6-hour video yields hundreds of thousands of detections; people want "which labels, how sure,
and when". The summary's state is plain JSON so a collection that resumes in a new invocation
picks up exactly where the last one stopped.
"""

from __future__ import annotations

from typing import Any

RANGE_GAP_MS = 2000
"""Detections closer than this are one appearance (Rekognition samples a few times a second)."""
MAX_RANGES_PER_NAME = 500
MAX_DISTINCT = 5000


class VideoSummary:
    """Accumulates one operation's Get* pages into a compact summary.

    Parameters
    ----------
    operation: str
        The catalogue name (``labels``, ``segments``, ...).
    state: dict | None
        A previous invocation's :meth:`state`, to resume.
    """

    def __init__(self, operation: str, state: dict[str, Any] | None = None) -> None:
        self.operation = operation
        self._state: dict[str, Any] = state or {"items": 0, "tracks": {}, "persons": [], "segments": [],
                                                 "segment_counts": {}, "video": None}

    def state(self) -> dict[str, Any]:
        return self._state

    def add_page(self, response: dict[str, Any], result_key: str) -> int:
        """Fold one Get* response in; returns the number of items it held."""
        items = response.get(result_key) or []
        if self._state["video"] is None and response.get("VideoMetadata"):
            self._state["video"] = response["VideoMetadata"]
        for item in items:
            self._add(item)
        self._state["items"] += len(items)
        return len(items)

    def _add(self, item: dict[str, Any]) -> None:
        op = self.operation
        timestamp = int(item.get("Timestamp", 0))
        if op == "labels":
            label = item.get("Label", {})
            self._track(label.get("Name"), label.get("Confidence"), timestamp)
        elif op == "moderation":
            label = item.get("ModerationLabel", {})
            self._track(label.get("Name"), label.get("Confidence"), timestamp)
        elif op == "celebrities":
            celebrity = item.get("Celebrity", {})
            self._track(celebrity.get("Name"), celebrity.get("Confidence"), timestamp)
        elif op == "faces":
            self._track("Face", item.get("Face", {}).get("Confidence"), timestamp)
        elif op == "face_search":
            self._person(item.get("Person", {}).get("Index"))
            for match in item.get("FaceMatches") or []:
                face = match.get("Face", {})
                self._track(face.get("ExternalImageId") or face.get("FaceId"), match.get("Similarity"), timestamp)
        elif op == "text":
            detection = item.get("TextDetection", {})
            if detection.get("Type", "LINE") == "LINE":
                self._track(detection.get("DetectedText"), detection.get("Confidence"), timestamp)
        elif op == "segments":
            kind = item.get("Type", "UNKNOWN")
            detail = item.get("TechnicalCueSegment", {}).get("Type") if kind == "TECHNICAL_CUE" else None
            counts = self._state["segment_counts"]
            counts[kind] = counts.get(kind, 0) + 1
            if len(self._state["segments"]) < MAX_DISTINCT:
                self._state["segments"].append({
                    "type": kind,
                    "detail": detail,
                    "start_ms": item.get("StartTimestampMillis"),
                    "end_ms": item.get("EndTimestampMillis"),
                    "start_timecode": item.get("StartTimecodeSMPTE"),
                    "end_timecode": item.get("EndTimecodeSMPTE"),
                })

    def _person(self, index: Any) -> None:
        if index is not None and index not in self._state["persons"] and len(self._state["persons"]) < MAX_DISTINCT:
            self._state["persons"].append(index)

    def _track(self, name: str | None, confidence: float | None, timestamp: int) -> None:
        if not name:
            return
        tracks = self._state["tracks"]
        track = tracks.get(name)
        if track is None:
            if len(tracks) >= MAX_DISTINCT:
                return
            track = tracks[name] = {"max_confidence": None, "detections": 0, "ranges": []}
        track["detections"] += 1
        if confidence is not None:
            track["max_confidence"] = max(track["max_confidence"] or 0.0, round(float(confidence), 3))
        ranges = track["ranges"]
        if ranges and timestamp - ranges[-1][1] <= RANGE_GAP_MS and timestamp >= ranges[-1][0]:
            ranges[-1][1] = max(ranges[-1][1], timestamp)
        elif len(ranges) < MAX_RANGES_PER_NAME:
            ranges.append([timestamp, timestamp])

    def summary(self) -> dict[str, Any]:
        """The document written next to the pages: what, how sure, and when."""
        state = self._state
        tracks = sorted(state["tracks"].items(), key=lambda kv: (-(kv[1]["max_confidence"] or 0), kv[0]))
        summary: dict[str, Any] = {"operation": self.operation, "items": state["items"], "video": state["video"]}
        named = [
            {"name": name, "max_confidence": t["max_confidence"], "detections": t["detections"],
             "time_ranges_ms": t["ranges"]}
            for name, t in tracks
        ]
        if self.operation in ("labels", "moderation", "celebrities"):
            summary[{"labels": "labels", "moderation": "moderation_labels", "celebrities": "celebrities"}[
                self.operation]] = named
        elif self.operation == "faces":
            face = state["tracks"].get("Face", {"detections": 0, "ranges": []})
            summary["faces"] = {"detections": face["detections"], "time_ranges_ms": face["ranges"]}
        elif self.operation == "face_search":
            summary["people"] = {"distinct": len(state["persons"])}
            summary["matched_faces"] = named
        elif self.operation == "text":
            summary["text"] = named
        elif self.operation == "segments":
            summary["segment_counts"] = state["segment_counts"]
            summary["segments"] = state["segments"]
        return summary
