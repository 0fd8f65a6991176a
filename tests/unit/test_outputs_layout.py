"""The output layout (rekpipe_shared.outputs): predictable, readable, collision-free, within S3's key limit."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from rekpipe_shared.operations import CATALOGUE
from rekpipe_shared.outputs import ResultsLayout, source_uri
from rekpipe_shared.schema import MAX_S3_KEY_BYTES


def _every_key(layout: ResultsLayout) -> set[str]:
    """Every object key a run of this layout can write (the largest page number included)."""
    keys = {layout.manifest_key, layout.pointer_key}
    for op in CATALOGUE.values():
        if op.image_api and not layout.video:
            keys.add(layout.image_result_key(op.image_api))
        if op.video_start_api and layout.video:
            folder = layout.video_folder_prefix(op.video_start_api)
            keys |= {folder + name for name in ("page-00001.json", "page-99999.json", "summary.json",
                                                "_collect_state.json")}
    return keys


def test_layout_is_readable_and_predictable():
    # GIVEN an image version, run 2, and an unversioned video
    image = ResultsLayout("photos", "2019/beach day+é.png", "3HL4kq", None, video=False, run=2)
    video = ResultsLayout("media", "clips/a.mp4", None, '"9b2cf535f27731c974343645a3985328"', video=True, run=1)
    # WHEN / THEN the keys spell out bucket, key, version and run
    assert image.run_prefix == "sync/photos/2019/beach day+é.png/version-3HL4kq/run-002/"
    assert image.image_result_key("DetectLabels") == "sync/photos/2019/beach day+é.png/version-3HL4kq/run-002/DetectLabels.json"
    assert image.pointer_key == "sync/photos/2019/beach day+é.png/latest.json"
    assert video.video_folder_prefix("StartLabelDetection") == (
        "async/media/clips/a.mp4/etag-9b2cf535f27731c974343645a3985328/run-001/LabelDetection/")
    assert source_uri("photos", "a.jpg", "v1") == "s3://photos/a.jpg?versionId=v1"


def test_layout_never_shares_a_key_between_tasks_or_runs():
    # GIVEN adversarial keys: one that looks like another key's version/run folders, a null version,
    # versions with '/', the same key in two buckets, and several runs
    keys = ["x.jpg", "x.jpg/version-v1/run-001/a.jpg", "x.jpg/latest.json.jpg", "x.jpg/version-v1",
            "run-001/x.jpg", "a//b.jpg", "x.mp4", "x.mp4/version-v1/run-001/LabelDetection/page-00001.mp4"]
    versions = [("v1", None), ("v1/run-001", None), ("null", "e1"), (None, "e1"), (None, "e2"), ("v%2F", None)]
    layouts = [ResultsLayout(bucket, key, version, etag, video=key.endswith(".mp4"), run=run)
               for bucket, key, (version, etag), run in itertools.product(("b1", "b2"), keys, versions, (1, 2, 10))]

    # WHEN every key every run could write is listed
    owners: dict[str, set[tuple]] = {}
    for layout in layouts:
        for key in _every_key(layout) - {layout.pointer_key}:
            owners.setdefault(key, set()).add((layout.bucket, layout.key, layout.version_segment, layout.run))

    # THEN no result key has two owners; a pointer is shared only by the runs and versions of its own key
    assert all(len(found) == 1 for found in owners.values()), [k for k, v in owners.items() if len(v) > 1][:3]
    pointers: dict[str, set[tuple]] = {}
    for layout in layouts:
        pointers.setdefault(layout.pointer_key, set()).add((layout.bucket, layout.key))
        assert layout.pointer_key not in owners
    assert all(len(found) == 1 for found in pointers.values())


@pytest.mark.parametrize("video", [False, True])
def test_layout_long_keys_fall_back_and_always_fit(video):
    # GIVEN keys from short to the longest S3 allows (1,024 bytes), in multi-byte characters, a 63-character bucket
    bucket = "b" * 63
    suffix = ".mp4" if video else ".jpg"
    for length in (10, 700, 850, 900, 1000, 1020):
        key = ("é" * (length // 2))[: (length - 4) // 2] + suffix
        layout = ResultsLayout(bucket, key, "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY-MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", None,
                               video=video, run=999)
        # WHEN every key a run could write is built
        written = _every_key(layout)
        # THEN none passes 1,024 bytes, and a key that would is replaced by its SHA-256 under _long-keys
        assert max(len(k.encode()) for k in written) <= MAX_S3_KEY_BYTES, (length, layout.long_key)
        if layout.long_key:
            digest = hashlib.sha256(key.encode()).hexdigest()
            assert layout.key_prefix == f"{'async' if video else 'sync'}/_long-keys/{bucket}/{digest}/"
        else:
            assert key in layout.run_prefix
    assert ResultsLayout(bucket, "a" * 1020 + suffix, None, "e", video=video, run=1).long_key
    assert not ResultsLayout(bucket, "short" + suffix, None, "e", video=video, run=1).long_key


def test_layout_choice_does_not_depend_on_the_run():
    # GIVEN a key just at the boundary
    for length in range(780, 960, 7):
        key = "k" * length + ".jpg"
        # WHEN its layout is built for run 1 and run 123456 / THEN both choose the same form
        assert (ResultsLayout("bkt", key, "v", None, video=False, run=1).long_key
                == ResultsLayout("bkt", key, "v", None, video=False, run=123456).long_key)
