"""Building a report from a folder copy and from S3 (moto): discovery, runs, failures, pictures, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from rekpipe.cli import main
from rekpipe.report import FolderSource, ReportOptions, ReportTargetError, build_report
from rekpipe.samples import jpeg_bytes
from rekpipe.synthetic import SYNTHETIC_MARKER_KEY, marker_document
from tests.support.html_dom import parse

EVENTS = Path(__file__).resolve().parent.parent / "events" / "report"
OUTPUT = "rekpipe-output"
CONTENT = "rekpipe-content"
IMAGE_ID = "3f1c0d8e5b2a4c6d7e8f9a0b1c2d3e4f5a6b7c8d"
FAILED_ID = "aa" * 20
VIDEO_ID = "bb" * 20


def _manifest(task_id: str, key: str, *, media: str = "image", status: str = "SUCCEEDED",
              outputs: dict[str, str] | None = None, errors: dict | None = None,
              written_at: str = "2026-11-30T10:00:00Z", version: str = "v2") -> dict:
    return {"task_id": task_id, "source": {"bucket": CONTENT, "key": key, "version_id": version, "etag": '"e"',
                                           "size": 10},
            "media_type": media, "status": status, "operations": ["labels"], "outputs": outputs or {},
            "errors": errors or {}, "written_at": written_at}


def output_documents() -> dict[str, object]:
    """An output bucket's keys and bodies, in a layout the report must not depend on (it follows the URIs)."""
    def uri(key: str) -> str:
        return f"s3://{OUTPUT}/{key}"

    image_outputs = {api: uri(f"run-2/img/{api}.json") for api in ("DetectLabels", "DetectFaces")}
    return {
        "run-2/img/DetectLabels.json": json.loads((EVENTS / "DetectLabels.json").read_text()),
        "run-2/img/DetectFaces.json": json.loads((EVENTS / "DetectFaces.json").read_text()),
        "run-2/img/manifest.json": _manifest(IMAGE_ID, "street/cars.jpg", outputs=image_outputs,
                                             written_at="2026-11-30T11:00:00Z"),
        # an older run of the same version: superseded
        "run-1/img/manifest.json": _manifest(IMAGE_ID, "street/cars.jpg", status="FAILED", written_at=
                                             "2026-11-30T09:00:00Z", errors={"DetectLabels": {"code": "X",
                                                                                              "message": "old"}}),
        "sync/bad/manifest.json": _manifest(FAILED_ID, "<script>alert(1)</script>.jpg", status="FAILED",
                                            errors={"DetectLabels": {"code": "InvalidImageFormatException",
                                                                     "message": "Request has invalid image format"}}),
        "async/v/labels/summary.json": json.loads((EVENTS / "summary_labels.json").read_text()),
        "async/v/faces/summary.json": json.loads((EVENTS / "summary_faces.json").read_text()),
        "async/v/faces/page-00001.json": json.loads((EVENTS / "page_faces.json").read_text()),
        "async/v/manifest.json": _manifest(
            VIDEO_ID, "clips/dog.mp4", media="video", status="PARTIAL",
            outputs={"StartLabelDetection": uri("async/v/labels/summary.json"),
                     "StartFaceDetection": uri("async/v/faces/summary.json")},
            errors={"StartContentModeration": {"code": "FAILED", "message": "job failed"}}),
        "inventory/manifest.json": {"sourceBucket": "photos", "fileFormat": "CSV", "files": []},
    }


@pytest.fixture
def copy_folder(tmp_path: Path) -> Path:
    """What `rekpipe local run --out` leaves: the output bucket's keys as files, with the synthetic marker."""
    root = tmp_path / "rekpipe-output"
    for key, body in output_documents().items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(json.dumps(body))
    (root / SYNTHETIC_MARKER_KEY).write_text(json.dumps(marker_document(written_at="now", seed=7)))
    return root


def _index(out: Path) -> dict:
    return json.loads((out / "data" / "index.js").read_text()[len("window.REKPIPE_INDEX = "):-2])


def test_report_from_folder_has_one_entry_per_version_and_lists_failures(copy_folder, tmp_path):
    # GIVEN a local run's copy with an image (two runs), a failed image, a partial video and an inventory manifest
    out = tmp_path / "report"

    # WHEN the report is built from it
    result = build_report(FolderSource(copy_folder), ReportOptions(out=out, images="none"))

    # THEN there is one entry per object version, the newest run's, and the other manifest is ignored
    assert (result.objects, result.manifests, result.superseded, result.not_manifests) == (3, 5, 1, 1)
    assert result.counts == {"SUCCEEDED": 1, "PARTIAL": 1, "FAILED": 1} and result.synthetic
    rows = {row[1]: row for row in _index(out)["objects"]}
    assert rows["street/cars.jpg"][4] == "SUCCEEDED"
    # AND the failed and partial objects carry their reason for the index's attention list
    assert rows["<script>alert(1)</script>.jpg"][6] == "InvalidImageFormatException: Request has invalid image format"
    assert rows["clips/dog.mp4"][4] == "PARTIAL" and rows["clips/dog.mp4"][6].startswith("FAILED: job failed")
    # AND each object has its page: boxes from the outputs the manifest points at, the video's timeline and counts
    image = parse((out / "objects" / IMAGE_ID[:2] / f"{IMAGE_ID}.html").read_text())
    assert len(image.by_id("frame").find_all("div", cls="box")) == 2 + 4
    video = parse((out / "objects" / "bb" / f"{VIDEO_ID}.html").read_text())
    assert len(video.find_all("div", cls="track", data_name="Dog")[0].find_all("div", cls="bar")) == 3
    assert "peak 2" in video.find_all("div", cls="count-series", data_series="Faces")[0].text()
    failed_ops = video.by_id("operations").find_all("tr", data_status="FAILED")
    assert "job failed" in failed_ops[0].text()
    # AND every page, the index included, says the content is synthetic
    for page in [out / "index.html", *out.glob("objects/*/*.html")]:
        assert parse(page.read_text()).by_id("synthetic-banner") is not None, page


def test_report_of_a_subfolder_follows_uris_to_the_copy_root(copy_folder, tmp_path):
    # GIVEN only the async/ part of the copy is asked for
    out = tmp_path / "report"

    # WHEN the report is built from that subfolder
    result = build_report(FolderSource(copy_folder / "async"), ReportOptions(out=out, images="none"))

    # THEN it holds the video only, its outputs were found above the subfolder, and the marker too
    assert result.objects == 1 and result.unreadable_outputs == 0 and result.synthetic
    assert [row[1] for row in _index(out)["objects"]] == ["clips/dog.mp4"]


def test_report_without_marker_has_no_banner_and_embeds_pictures_from_media(copy_folder, tmp_path):
    # GIVEN a copy without the synthetic marker, and the folder of analysed files beside it
    (copy_folder / SYNTHETIC_MARKER_KEY).unlink()
    media = tmp_path / "media"
    (media / "street").mkdir(parents=True)
    (media / "street" / "cars.jpg").write_bytes(jpeg_bytes(1, size=(1600, 1200)))
    out = tmp_path / "report"

    # WHEN the report embeds pictures
    result = build_report(FolderSource(copy_folder, media), ReportOptions(out=out, images="embed", thumbnail_px=400))

    # THEN no page has the banner, and the image page shows a downscaled copy stored in the report
    assert not result.synthetic
    assert all(parse(p.read_text()).by_id("synthetic-banner") is None for p in out.rglob("*.html"))
    picture = parse((out / "objects" / IMAGE_ID[:2] / f"{IMAGE_ID}.html").read_text()).by_id("picture")
    assert picture.attrs["src"] == f"../../media/{IMAGE_ID[:2]}/{IMAGE_ID}.jpg"
    assert (picture.attrs["width"], picture.attrs["height"]) == ("400", "300")
    assert (out / "media" / IMAGE_ID[:2] / f"{IMAGE_ID}.jpg").is_file()


def test_report_replaces_a_previous_report_but_refuses_other_folders(copy_folder, tmp_path):
    # GIVEN a folder with a previous report, and a folder with someone's files
    out = tmp_path / "report"
    build_report(FolderSource(copy_folder), ReportOptions(out=out, images="none"))
    (out / "objects" / "zz").mkdir()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.txt").write_text("mine")

    # WHEN a report is written to each
    build_report(FolderSource(copy_folder), ReportOptions(out=out, images="none"))
    with pytest.raises(ReportTargetError):
        build_report(FolderSource(copy_folder), ReportOptions(out=other, images="none"))

    # THEN the old report was replaced, the other folder untouched
    assert not (out / "objects" / "zz").exists() and (out / "index.html").is_file()
    assert [p.name for p in other.iterdir()] == ["keep.txt"]


def _put_bucket(documents: dict[str, object]) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=OUTPUT)
    s3.create_bucket(Bucket=CONTENT)
    s3.put_bucket_versioning(Bucket=CONTENT, VersioningConfiguration={"Status": "Enabled"})
    for key, body in documents.items():
        s3.put_object(Bucket=OUTPUT, Key=key, Body=json.dumps(body).encode())


def test_cli_report_of_an_s3_prefix_embeds_pictures_from_the_content_bucket(aws_env, tmp_path, monkeypatch):
    # GIVEN the output bucket in moto, and the analysed image (a real JPEG) in a versioned content bucket
    from moto import mock_aws

    monkeypatch.chdir(tmp_path)
    with mock_aws():
        documents = output_documents()
        _put_bucket(documents)
        version = boto3.client("s3").put_object(Bucket=CONTENT, Key="street/cars.jpg",
                                                Body=jpeg_bytes(3, size=(320, 240)))["VersionId"]
        for key in ("run-2/img/manifest.json", "run-1/img/manifest.json"):
            documents[key]["source"]["version_id"] = version  # type: ignore[index]
            boto3.client("s3").put_object(Bucket=OUTPUT, Key=key, Body=json.dumps(documents[key]).encode())

        # WHEN `rekpipe report` is given a prefix of the output bucket
        result = CliRunner().invoke(main, ["report", f"s3://{OUTPUT}/run-", "--out", "out"])

    # THEN it reports the objects under that prefix only, with the picture copied in, and says where to look
    assert result.exit_code == 0, result.output
    assert [row[1] for row in _index(tmp_path / "out")["objects"]] == ["street/cars.jpg"]
    assert (tmp_path / "out" / "media" / IMAGE_ID[:2] / f"{IMAGE_ID}.jpg").is_file()
    assert "Report of 1 objects (1 SUCCEEDED)" in result.stdout and "1 older runs superseded" in result.stdout
    assert f"Open {(tmp_path / 'out' / 'index.html').as_uri()}" in result.stdout
    assert "Found 2 manifests" in result.stderr  # progress on stderr


def test_cli_report_defaults_to_the_stacks_output_bucket_and_pages_listings(aws_env, tmp_path, monkeypatch):
    # GIVEN a stack whose output bucket holds 1,001 manifests in 1,001 top-level folders (more than one listing page)
    from moto import mock_aws

    monkeypatch.chdir(tmp_path)
    with mock_aws():
        _put_bucket({})
        s3 = boto3.client("s3")
        for n in range(1001):
            s3.put_object(Bucket=OUTPUT, Key=f"k{n:04d}/manifest.json",
                          Body=json.dumps(_manifest(f"{n:040x}", f"photos/{n:04d}.jpg")).encode())
        template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {"OutputBucketName": {"Value": OUTPUT}}}
        boto3.client("cloudformation").create_stack(StackName="RekognitionPipeline",
                                                    TemplateBody=json.dumps(template))

        # WHEN `rekpipe report` runs with no source
        result = CliRunner().invoke(main, ["report", "--images", "none", "--out", "out", "--workers", "4"])

    # THEN every object is in the index, with no banner (no marker: not the simulator's bucket)
    assert result.exit_code == 0, result.output
    index = _index(tmp_path / "out")
    assert len(index["objects"]) == 1001 and index["synthetic"] is None
    assert len(list((tmp_path / "out" / "objects").rglob("*.html"))) == 1001


def test_cli_report_errors_name_the_fix(aws_env, tmp_path, monkeypatch):
    # GIVEN an empty folder and a folder that is not a report
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    shutil.copytree(tmp_path / "empty", tmp_path / "copy")

    # WHEN the report is asked of them
    no_manifests = CliRunner().invoke(main, ["report", "empty", "--out", "r1"])
    busy = CliRunner().invoke(main, ["report", "copy", "--out", "busy"])
    media_for_s3 = CliRunner().invoke(main, ["report", "s3://b/", "--media", "empty"])

    # THEN each is a one-line user error (exit 1) that says what to do
    assert no_manifests.exit_code == 1 and "No manifest.json of the pipeline under empty" in no_manifests.stderr
    assert busy.exit_code == 1 and "busy exists and is not a rekpipe report" in busy.stderr
    assert media_for_s3.exit_code == 1 and "--media is for a FOLDER source" in media_for_s3.stderr


def test_every_s3_request_of_a_build_passes_the_shared_rate_limiter(aws_env, tmp_path):
    # GIVEN the output bucket in moto, an S3 client that counts its requests, and a limiter that counts its permits
    import threading

    from moto import mock_aws

    from rekpipe.report import RateLimiter, S3Source

    class CountingLimiter(RateLimiter):
        def __init__(self) -> None:
            super().__init__(per_second=1e9)
            self.permits, self._count_lock = 0, threading.Lock()

        def wait(self) -> None:
            with self._count_lock:
                self.permits += 1
            super().wait()

    with mock_aws():
        _put_bucket(output_documents())
        s3 = boto3.client("s3")
        requests: list[str] = []
        s3.meta.events.register("before-call.s3", lambda model, **_: requests.append(model.name))
        limiter = CountingLimiter()

        # WHEN a report is built from it on 8 threads
        result = build_report(S3Source(s3, OUTPUT, "", limiter), ReportOptions(out=tmp_path / "r", images="embed",
                                                                              workers=8))

    # THEN it listed and read in parallel, and every request (lists, gets, the marker, pictures) took a permit
    assert result.objects == 3 and {"ListObjectsV2", "GetObject"} <= set(requests)
    assert limiter.permits == len(requests) > 10
