"""HTML generation of the report on stored, real-shaped Rekognition responses: boxes, timelines, escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rekpipe.report import render
from rekpipe.report.extract import (
    NotAManifestError,
    count_series,
    image_labels,
    image_view,
    newest_per_version,
    parse_manifest,
    video_view,
)
from tests.support.html_dom import parse

EVENTS = Path(__file__).resolve().parent.parent / "events" / "report"
XSS_KEY = "<script>alert(1)</script>.jpg"
XSS_LABEL = '<img src=x onerror="alert(2)">'


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def responses() -> dict[str, dict]:
    return {api: load(f"{api}.json") for api in ("DetectFaces", "DetectLabels", "DetectText", "DetectModerationLabels")}


def _image_dom(entry, view):
    return parse(render.image_page(entry, view, picture="../../media/3f/x.jpg", picture_size=(800, 600),
                                   picture_note="copy", synthetic=None))


def test_image_page_draws_one_box_per_face_instance_and_text_line(responses):
    # GIVEN the stored responses of one image: 2 faces, 4 label instances (3 cars, 1 person), 1 text line + 1 word
    entry = parse_manifest(load("manifest_image.json"))

    # WHEN its page is rendered
    dom = _image_dom(entry, image_view(responses))

    # THEN the frame holds one box per face and per instance, and one per LINE (words repeat their line)
    frame = dom.by_id("frame")
    assert len(frame.find_all("div", cls="kind-face")) == 2
    assert len(frame.find_all("div", cls="kind-label")) == 4
    assert len(frame.find_all("div", cls="kind-text")) == 1
    assert len(frame.find_all("div", cls="box")) == 7 == int(frame.attrs["data-boxes"])


def test_image_boxes_are_placed_from_bounding_box_ratios(responses):
    # GIVEN DetectLabels' first car instance: Left 0.0038, Top 0.5039, Width 0.1062, Height 0.1853
    entry = parse_manifest(load("manifest_image.json"))

    # WHEN the page is rendered
    dom = _image_dom(entry, image_view(responses))

    # THEN its box is positioned in percent of the picture, from those ratios
    car = next(b for b in dom.find_all("div", cls="kind-label") if b.attrs["title"].startswith("Car 99.2%"))
    style = dict(part.split(":") for part in car.attrs["style"].split(";"))
    assert style == {"left": "0.380%", "top": "50.392%", "width": "10.616%", "height": "18.528%"}


def test_image_boxes_outside_the_picture_are_clamped_to_it(responses):
    # GIVEN the second face, which Rekognition placed at Left -0.02 (it touches the edge)
    view = image_view(responses)

    # WHEN its box is extracted
    face = [b for b in view.boxes if b.kind == "face"][1]

    # THEN it starts at the edge, keeps its width, and never leaves the frame
    assert (face.left, face.top, face.width, face.height) == (0.0, 0.61, 0.11, 0.18)
    assert all(0 <= b.left <= b.left + b.width <= 1 and 0 <= b.top <= b.top + b.height <= 1 for b in view.boxes)


def test_image_page_lists_moderation_labels_and_status(responses):
    # GIVEN a PARTIAL image whose DetectText failed
    document = load("manifest_image.json") | {"status": "PARTIAL",
                                              "errors": {"DetectText": {"code": "InternalServerError",
                                                                        "message": "try again"}}}
    entry = parse_manifest(document)

    # WHEN its page is rendered
    dom = _image_dom(entry, image_view(responses))

    # THEN the moderation labels are listed, and the status and the failed API's error are shown
    moderation = dom.by_id("moderation-labels")
    assert "Alcoholic Beverages" in moderation.text() and "under Alcohol" in moderation.text()
    assert dom.by_id("task-status").text() == "PARTIAL"
    failed = dom.by_id("operations").find_all("tr", cls="operation", data_status="FAILED")
    assert len(failed) == 1 and "InternalServerError: try again" in failed[0].text()


def test_object_page_escapes_keys_and_labels():
    # GIVEN an object key and a label that are HTML
    document = load("manifest_image.json")
    document["source"]["key"] = XSS_KEY
    labels = {"Labels": [{"Name": XSS_LABEL, "Confidence": 90.0, "Instances": [
        {"BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1}, "Confidence": 90.0}]}]}
    entry = parse_manifest(document)

    # WHEN the page is rendered
    markup = render.image_page(entry, image_view({"DetectLabels": labels}), picture=None, picture_size=None,
                               picture_note="", synthetic=None)
    dom = parse(markup)

    # THEN both are text: no script but the report's own, no element with an event handler, the text intact
    assert [s.attrs.get("src") for s in dom.find_all("script")] == ["../../assets/report.js"]
    assert not [n for n in dom.iter() if any(name.startswith("on") for name in n.attrs)]
    assert not dom.find_all("img")
    assert dom.by_id("object-key").text() == XSS_KEY
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in markup
    assert XSS_LABEL in dom.find_all("span", cls="box-label")[0].text()


def test_index_data_keeps_keys_as_data_not_markup():
    # GIVEN an index line whose key and label are HTML and hold a line separator
    from rekpipe.report.model import IndexEntry

    entry = IndexEntry(entry_id="ab" * 20, href="", bucket="b", key=XSS_KEY + "\u2028", version="v",
                       media_type="image", status="FAILED", labels=(XSS_LABEL,), error="InvalidImageFormatException: x")

    # WHEN the data file is written
    text = render.index_data([entry], counts={"FAILED": 1}, synthetic="made up", source="s3://b/",
                             generated_at="now")

    # THEN it is one assignment of JSON that gives back the exact strings (the page sets them as textContent)
    assert text.startswith("window.REKPIPE_INDEX = ") and text.endswith(";\n") and "\u2028" not in text
    document = json.loads(text[len("window.REKPIPE_INDEX = "):-2])
    row = document["objects"][0]
    assert row[1] == XSS_KEY + "\u2028" and document["labels"][row[5][0]] == XSS_LABEL
    assert document["synthetic"] == "made up" and document["counts"] == {"FAILED": 1}


def test_every_page_says_when_the_content_is_synthetic(responses):
    # GIVEN a report of simulator output
    entry = parse_manifest(load("manifest_image.json"))
    note = "Analysis content is SYNTHETIC."

    # WHEN the index and an object page are rendered
    pages = [render.index_page(source="s3://o/", generated_at="now", counts={"SUCCEEDED": 1}, synthetic=note,
                               page_size=100),
             render.image_page(entry, image_view(responses), picture=None, picture_size=None, picture_note="",
                               synthetic=note),
             render.video_page(entry, video_view({}, {}), synthetic=note, notes=[])]

    # THEN each one opens its body with the banner
    for markup in pages:
        body = parse(markup).find_all("body")[0]
        first = next(child for child in body.children if child.tag != "#text")
        assert first.attrs.get("id") == "synthetic-banner" and note in first.text()
    # AND without the marker there is none
    assert "synthetic-banner" not in render.index_page(source="s3://o/", generated_at="now", counts={}, synthetic=None,
                                                       page_size=100)


def test_video_timeline_has_one_bar_per_label_range():
    # GIVEN the summaries of labels (Dog: 3 ranges, Beach: 1), faces, and segments (1 cue, 2 shots)
    summaries = {"StartLabelDetection": load("summary_labels.json"), "StartFaceDetection": load("summary_faces.json"),
                 "StartSegmentDetection": load("summary_segments.json")}
    statuses = {name: "SUCCEEDED" for name in summaries}
    entry = parse_manifest(load("manifest_image.json") | {"media_type": "video"})

    # WHEN the video page is rendered
    view = video_view(summaries, statuses, {"StartFaceDetection": [load("page_faces.json")]})
    dom = parse(render.video_page(entry, view, synthetic=None, notes=[]))

    # THEN every track has as many bars as its ranges, placed by time over the video's 60 s
    tracks = {t.attrs["data-name"]: t for t in dom.by_id("timeline").find_all("div", cls="track")}
    assert {name: len(t.find_all("div", cls="bar")) for name, t in tracks.items()} == {
        "Dog": 3, "Beach": 1, "Faces on screen": 1, "Shot": 2, "Technical cue: BlackFrames": 1}
    beach = tracks["Beach"].find_all("div", cls="bar")[0].attrs["style"]
    assert beach == f"left:{2 / 60 * 100:.3f}%;width:{28 / 60 * 100:.3f}%"
    # AND a single-moment detection still gets a visible bar
    assert tracks["Dog"].find_all("div", cls="bar")[2].attrs["style"].endswith("width:0.200%")
    # AND the faces count comes from the pages: two faces at 1.0 s is the peak
    faces = dom.find_all("div", cls="count-series", data_series="Faces")[0]
    assert "peak 2" in faces.text() and len(faces.find_all("div", cls="bin")) == 100


def test_count_series_bins_the_most_faces_at_one_moment():
    # GIVEN a page with two faces at 1.0 s and one at 1.2 s, in a 60 s video (bins of 600 ms)
    page = load("page_faces.json")

    # WHEN it is counted
    series = count_series("StartFaceDetection", [page], 60000)

    # THEN the bin 0.6-1.2 s counts 2 (the most at one moment), the next one 1, every other bin 0
    assert series is not None and series.bin_ms == 600
    assert series.counts[1:3] == (2, 1) and sum(series.counts) == 3


def test_manifest_parsing_ignores_other_manifests_and_keeps_the_newest_run():
    # GIVEN an S3 Inventory manifest.json, and two runs of the same object version
    inventory = {"sourceBucket": "photos", "fileFormat": "CSV", "files": []}
    older = load("manifest_image.json") | {"written_at": "2026-11-30T10:00:00Z", "status": "FAILED"}
    newer = load("manifest_image.json") | {"written_at": "2026-11-30T11:00:00Z"}
    other_version = load("manifest_image.json") | {"task_id": "ff" * 20}
    other_version["source"] = other_version["source"] | {"version_id": "v1"}

    # WHEN they are parsed and reduced
    with pytest.raises(NotAManifestError):
        parse_manifest(inventory)
    kept, superseded = newest_per_version([parse_manifest(d) for d in (older, newer, other_version)])

    # THEN one entry per version remains, the newer run's
    assert superseded == 1
    assert sorted((e.source.version_id, e.status) for e in kept) == [("v1", "SUCCEEDED"), ("v2", "SUCCEEDED")]


def test_image_labels_are_what_search_finds(responses):
    # GIVEN the stored responses / WHEN the index's labels are taken
    names = image_labels(responses)

    # THEN labels, moderation labels and "Face" are searchable, each once
    assert names == ["Car", "Vehicle", "Person", "Alcoholic Beverages", "Alcohol", "Face"]


def test_index_data_names_versions_only_where_a_key_has_several():
    # GIVEN two versions of one key and one object with a single version
    from rekpipe.report.model import IndexEntry

    def entry(entry_id: str, key: str, version: str) -> IndexEntry:
        return IndexEntry(entry_id=entry_id, href="", bucket="content", key=key, version=version, media_type="image",
                          status="SUCCEEDED", labels=(), error="")

    # WHEN the data file is written
    text = render.index_data([entry("a" * 40, "dup/same.jpg", "v1"), entry("b" * 40, "dup/same.jpg", "v2"),
                              entry("c" * 40, "one.jpg", "v9")], counts={"SUCCEEDED": 3}, synthetic=None,
                             source="s3://o/", generated_at="now")

    # THEN the two versions are told apart, the single one carries none, and the bucket is stored once
    document = json.loads(text[len("window.REKPIPE_INDEX = "):-2])
    assert [(row[1], row[7]) for row in document["objects"]] == [("dup/same.jpg", "v1"), ("dup/same.jpg", "v2"),
                                                                 ("one.jpg", "")]
    assert document["buckets"] == ["content"] and {row[2] for row in document["objects"]} == {0}
