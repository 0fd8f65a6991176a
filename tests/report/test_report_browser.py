"""The report of a real `rekpipe local run`, rendered by headless Chromium (Debian's package): DOM and screenshots.

Run with ``REKPIPE_UPDATE_SCREENSHOTS=1`` to refresh the README's screenshots in ``docs/report/``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from rekpipe.cli.local import LocalRunOptions, run_local
from rekpipe.samples import corrupt_image_bytes, generate, write_to
from rekpipe_shared.settings import PipelineSettings
from tests.support.chromium import dump_dom, find_chromium, screenshot
from tests.support.html_dom import parse

pytestmark = pytest.mark.e2e

CHROMIUM = find_chromium()
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "report"
XSS_KEY = "<script>alert(1)</script>.jpg"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One local run over generated media, a corrupt "photo" and an HTML key; returns (out, report index)."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it in CI")
    monkeypatch = pytest.MonkeyPatch()
    from tests.conftest import FAKE_ENV

    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    folder = tmp_path_factory.mktemp("media")
    samples = generate(images=6, videos=1, seed=11)
    write_to(folder, samples)
    (folder / XSS_KEY).parent.mkdir(parents=True)  # the key's "/" makes a folder "<script>alert(1)<"
    (folder / XSS_KEY).write_bytes(next(s.body for s in samples if s.key.endswith(".jpg")))
    (folder / "broken" / "not really.jpg").parent.mkdir()
    (folder / "broken" / "not really.jpg").write_bytes(corrupt_image_bytes())
    settings = PipelineSettings(image_operations=("labels", "faces", "text", "moderation"),
                                video_operations=("labels", "faces", "moderation", "segments"),
                                video_job_wait_seconds=30, video_slot_wait_seconds=60, video_job_limit_retry_seconds=2)
    out = tmp_path_factory.mktemp("run") / "out"
    try:
        result = run_local(LocalRunOptions(folder=folder, out=out, settings=settings, timeout=240))
    finally:
        monkeypatch.undo()
    assert result.report is not None and result.report.is_file()
    return out, result.report


def _manifests(out: Path) -> dict[str, dict]:
    return {m["source"]["key"]: m for m in (json.loads(p.read_text()) for p in out.rglob("manifest.json"))}


def _output(out: Path, uri: str) -> dict:
    return json.loads((out / uri.split("/", 3)[3]).read_text())


def _page_url(report: Path, task_id: str) -> str:
    return (report.parent / "objects" / task_id[:2] / f"{task_id}.html").as_uri()


def _keep(shot: Path) -> None:
    if os.environ.get("REKPIPE_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS / shot.name)


def test_browser_index_lists_every_object_and_renders_keys_as_text(local_run, tmp_path):
    out, report = local_run
    manifests = _manifests(out)

    # WHEN Chromium opens the index
    dom = parse(dump_dom(CHROMIUM, report.as_uri()))
    screenshot(CHROMIUM, report.as_uri(), tmp_path / "index.png", height=1100)
    _keep(tmp_path / "index.png")

    # THEN its script listed every analysed object, each linking to its page, the HTML key as plain text
    links = {a.text(): a.attrs["href"] for a in dom.by_id("objects").find_all("a", cls="object-link")}
    assert set(links) == set(manifests)
    assert links[XSS_KEY] == f"objects/{manifests[XSS_KEY]['task_id'][:2]}/{manifests[XSS_KEY]['task_id']}.html"
    assert not [s for s in dom.find_all("script") if "alert" in s.text() or "alert" in s.attrs.get("src", "")]
    # AND the counts by status, the failed object with its reason, and the synthetic banner are there
    failed = [key for key, m in manifests.items() if m["status"] == "FAILED"]
    assert failed == ["broken/not really.jpg"]
    assert dom.by_id("count-FAILED").text() == "1"
    reasons = [row.text() for row in dom.by_id("attention-rows").find_all("tr", cls="attention-row")]
    assert len(reasons) == 1 and "InvalidImageFormatException" in reasons[0]
    assert dom.by_id("synthetic-banner") is not None


def test_browser_index_search_by_label_filters_rows(local_run):
    out, report = local_run
    manifests = _manifests(out)
    video_key = next(key for key, m in manifests.items() if m["media_type"] == "video")
    label = _output(out, manifests[video_key]["outputs"]["StartLabelDetection"])["labels"][0]["name"]

    # WHEN the index is opened with a search for one of the video's labels (the search lives in the fragment)
    dom = parse(dump_dom(CHROMIUM, f"{report.as_uri()}#q={quote(label)}"))

    # THEN only objects with that label (or the text in their key) are listed, the video among them
    links = {a.text(): a.attrs["href"] for a in dom.by_id("objects").find_all("a", cls="object-link")}
    assert video_key in links and len(links) < len(manifests)
    assert dom.by_id("matches").text().endswith(f"of {len(manifests)} objects")

    # WHEN the video's link is followed: it carries the search as the timeline's label filter
    assert "#label=" in links[video_key]
    video = parse(dump_dom(CHROMIUM, f"{report.parent.as_uri()}/{links[video_key]}"))

    # THEN the timeline shows only the rows whose name holds the label
    tracks = video.by_id("timeline").find_all("div", cls="track")
    shown = [t.attrs["data-name"] for t in tracks if "hidden" not in t.classes]
    assert shown and all(label.lower() in name.lower() for name in shown) and len(shown) < len(tracks)
    assert video.by_id("filter-matches").text() == f"{len(shown)} of {len(tracks)} rows"


def test_browser_image_page_draws_one_box_per_face_and_instance(local_run, tmp_path):
    out, report = local_run
    best: tuple[int, str] = (-1, "")
    for key, manifest in _manifests(out).items():
        if manifest["media_type"] != "image" or manifest["status"] != "SUCCEEDED":
            continue
        faces = len(_output(out, manifest["outputs"]["DetectFaces"])["FaceDetails"])
        instances = sum(len(label.get("Instances") or [])
                        for label in _output(out, manifest["outputs"]["DetectLabels"])["Labels"])
        lines = sum(d["Type"] == "LINE" for d in _output(out, manifest["outputs"]["DetectText"])["TextDetections"])

        # WHEN Chromium opens the image's page
        frame = parse(dump_dom(CHROMIUM, _page_url(report, manifest["task_id"]))).by_id("frame")

        # THEN it drew one box per face and per label instance (and per text line), over the embedded picture
        drawn = frame.find_all("div", cls="box")
        assert len([b for b in drawn if b.classes & {"kind-face", "kind-label"}]) == faces + instances, key
        assert len([b for b in drawn if "kind-text" in b.classes]) == lines, key
        assert frame.find_all("img")[0].attrs["src"].startswith("../../media/"), key
        best = max(best, (faces + instances, manifest["task_id"]))
    assert best[0] > 0, "no generated image has a face or a label instance: the seed no longer tests boxes"
    shot = tmp_path / "image.png"
    screenshot(CHROMIUM, _page_url(report, best[1]), shot, height=1300)
    _keep(shot)


def test_browser_video_page_has_one_bar_per_label_range(local_run, tmp_path):
    out, report = local_run
    manifest = next(m for m in _manifests(out).values() if m["media_type"] == "video")
    summary = _output(out, manifest["outputs"]["StartLabelDetection"])

    # WHEN Chromium opens the video's page
    dom = parse(dump_dom(CHROMIUM, _page_url(report, manifest["task_id"])))

    # THEN the timeline has a row per label with one bar per time range of the summary
    group = dom.find_all("div", cls="track-group", data_group="Labels")[0]
    bars = {t.attrs["data-name"]: len(t.find_all("div", cls="bar")) for t in group.find_all("div", cls="track")}
    assert bars == {label["name"]: len(label["time_ranges_ms"]) for label in summary["labels"]}
    # AND shots, moderation and the faces count are drawn, and each operation's status is listed
    assert dom.find_all("div", cls="track-group", data_group="Segments")
    assert dom.find_all("div", cls="track-group", data_group="Moderation")
    assert dom.find_all("div", cls="count-series", data_series="Faces")
    listed = {row.find_all("td")[0].text() for row in dom.by_id("operations").find_all("tr", cls="operation")}
    assert listed == set(manifest["outputs"]) | set(manifest["errors"])
    shot = tmp_path / "video.png"
    screenshot(CHROMIUM, _page_url(report, manifest["task_id"]), shot, height=1300)
    _keep(shot)
