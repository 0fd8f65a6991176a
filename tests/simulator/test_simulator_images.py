"""Image (synchronous) operations of the Rekognition simulator, through a real boto3 client."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rekpipe.samples import corrupt_jpeg_bytes, jpeg_bytes, png_bytes
from rekpipe.simulator import RekognitionSimulator, SimClock, SimulatorConfig
from rekpipe.simulator._content import MAX_TEXT_WORDS, seeded, text_detections
from tests.simulator.simdata import BUCKET, FACELESS_JPEG, JPEG, NO_RETRIES, PNG, s3_image

if TYPE_CHECKING:
    from collections.abc import Callable

PROJECT_VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/widgets/version/widgets.1/1700000000000"

# operation -> (extra request arguments, response keys that must be present)
IMAGE_OPERATIONS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "detect_labels": ({}, {"Labels", "LabelModelVersion"}),
    "detect_faces": ({}, {"FaceDetails"}),
    "detect_moderation_labels": ({}, {"ModerationLabels", "ModerationModelVersion"}),
    "detect_text": ({}, {"TextDetections", "TextModelVersion"}),
    "recognize_celebrities": ({}, {"CelebrityFaces", "UnrecognizedFaces"}),
    "detect_protective_equipment": (
        {"SummarizationAttributes": {"MinConfidence": 80, "RequiredEquipmentTypes": ["FACE_COVER", "HEAD_COVER"]}},
        {"Persons", "ProtectiveEquipmentModelVersion", "Summary"},
    ),
    "search_faces_by_image": (
        {"CollectionId": "staff", "FaceMatchThreshold": 0},
        {"SearchedFaceBoundingBox", "SearchedFaceConfidence", "FaceMatches", "FaceModelVersion"},
    ),
    "detect_custom_labels": ({"ProjectVersionArn": PROJECT_VERSION_ARN}, {"CustomLabels"}),
}


@pytest.fixture
def rekognition(s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]) -> Any:
    """A client for a default simulator (seed 0) with the test bucket in place."""
    return client_for(make_sim())


def _assert_box(box: dict[str, float]) -> None:
    assert set(box) == {"Width", "Height", "Left", "Top"}
    assert all(0.0 <= value <= 1.0 for value in box.values())
    assert box["Left"] + box["Width"] <= 1.0 + 1e-6
    assert box["Top"] + box["Height"] <= 1.0 + 1e-6


@pytest.mark.parametrize("operation", sorted(IMAGE_OPERATIONS))
def test_image_operation_returns_modeled_keys(rekognition: Any, operation: str) -> None:
    # GIVEN a JPEG in S3 and the operation's required arguments
    extra, expected_keys = IMAGE_OPERATIONS[operation]

    # WHEN the operation is called through boto3
    response = getattr(rekognition, operation)(Image=s3_image(), **extra)

    # THEN botocore parsed a 200 response carrying the operation's result members
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["RequestId"]
    assert expected_keys <= set(response)


def test_detect_labels_honours_max_labels_and_min_confidence(rekognition: Any) -> None:
    # GIVEN the labels the simulator finds in the PNG with no limits
    everything = rekognition.detect_labels(Image=s3_image("photo.png"), MinConfidence=0)["Labels"]

    # WHEN the same image is asked for at most 2 labels above 80 %
    limited = rekognition.detect_labels(Image=s3_image("photo.png"), MaxLabels=2, MinConfidence=80)["Labels"]

    # THEN labels are well formed, sorted by confidence, and the limits hold
    assert len(everything) > 2, "the fixture PNG should yield several labels"
    confidences = [label["Confidence"] for label in everything]
    assert confidences == sorted(confidences, reverse=True)
    for label in everything:
        assert {"Name", "Confidence", "Instances", "Parents", "Aliases", "Categories"} <= set(label)
        for instance in label["Instances"]:
            _assert_box(instance["BoundingBox"])
            assert 0 < instance["Confidence"] <= 100
        names = {parent["Name"] for parent in label["Parents"]}
        assert names <= {other["Name"] for other in everything}, "parents are returned as labels too"
    assert len(limited) <= 2
    assert all(label["Confidence"] >= 80 for label in limited)
    assert [label["Name"] for label in limited] == [label["Name"] for label in everything if label["Confidence"] >= 80][
        :2
    ]


def test_detect_faces_all_attributes_adds_members(rekognition: Any) -> None:
    # GIVEN a JPEG in which the simulator sees a face
    image = s3_image("photo.jpg")

    # WHEN faces are detected with default and with ALL attributes
    default = rekognition.detect_faces(Image=image)["FaceDetails"]
    full = rekognition.detect_faces(Image=image, Attributes=["ALL"])["FaceDetails"]

    # THEN default carries the default set only and ALL adds the attribute members
    assert default and len(default) == len(full)
    assert set(default[0]) == {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}
    assert {"AgeRange", "Smile", "Gender", "Emotions", "EyesOpen", "FaceOccluded", "EyeDirection"} <= set(full[0])
    _assert_box(full[0]["BoundingBox"])
    assert full[0]["AgeRange"]["Low"] <= full[0]["AgeRange"]["High"]


def test_detect_text_links_words_to_lines(rekognition: Any) -> None:
    # GIVEN a JPEG the simulator reads text from
    # WHEN text is detected
    detections = rekognition.detect_text(Image=s3_image())["TextDetections"]

    # THEN every WORD points at a LINE whose text contains it
    lines = {d["Id"]: d for d in detections if d["Type"] == "LINE"}
    words = [d for d in detections if d["Type"] == "WORD"]
    assert lines and words
    for word in words:
        assert word["DetectedText"] in lines[word["ParentId"]]["DetectedText"].split()
        assert len(word["Geometry"]["Polygon"]) == 4


def test_text_detections_caps_words_at_100() -> None:
    # GIVEN a text-dense image of 40 lines (up to 240 words)
    rng = seeded("dense")

    # WHEN the detections are generated
    detections = text_detections(rng, line_count=40)

    # THEN no more than 100 WORDs come back, like the service's limit
    assert sum(d["Type"] == "WORD" for d in detections) == MAX_TEXT_WORDS


def test_detect_protective_equipment_summary_partitions_persons(rekognition: Any) -> None:
    # GIVEN summarisation for face and head covers
    attributes = {"MinConfidence": 70, "RequiredEquipmentTypes": ["FACE_COVER", "HEAD_COVER"]}

    # WHEN PPE is detected in the PNG
    response = rekognition.detect_protective_equipment(Image=s3_image("photo.png"), SummarizationAttributes=attributes)

    # THEN each person id lands in exactly one summary list
    summary = response["Summary"]
    ids = [person["Id"] for person in response["Persons"]]
    listed = (
        summary["PersonsWithRequiredEquipment"]
        + summary["PersonsWithoutRequiredEquipment"]
        + summary["PersonsIndeterminate"]
    )
    assert sorted(listed) == sorted(ids)


def test_image_bytes_are_accepted(rekognition: Any) -> None:
    # GIVEN an image passed inline (botocore base64-encodes it)
    # WHEN labels are detected from bytes and from the same object in S3
    inline = rekognition.detect_labels(Image={"Bytes": PNG})
    stored = rekognition.detect_labels(Image=s3_image("photo.png"))

    # THEN both give the same synthetic answer, keyed by the image content
    assert inline["Labels"] == stored["Labels"]


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(s3_image("missing.jpg"), id="missing-key"),
        pytest.param({"S3Object": {"Bucket": "no-such-bucket", "Name": "photo.jpg"}}, id="missing-bucket"),
        pytest.param(s3_image(version="3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"), id="missing-version"),
    ],
)
def test_image_missing_object_raises_invalid_s3_object(rekognition: Any, image: dict[str, Any]) -> None:
    # GIVEN an S3Object that cannot be read
    # WHEN an image operation is called
    with pytest.raises(rekognition.exceptions.InvalidS3ObjectException) as caught:
        rekognition.detect_labels(Image=image)

    # THEN the service's message comes back
    assert "Unable to get object metadata from S3" in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("key", "body"),
    [
        pytest.param("notes.gif", b"GIF89a" + b"\x00" * 64, id="gif"),
        pytest.param("empty.jpg", b"", id="zero-byte"),
    ],
)
def test_image_bad_format_raises_invalid_image_format(s3: Any, rekognition: Any, key: str, body: bytes) -> None:
    # GIVEN an object that is neither JPEG nor PNG
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    # WHEN labels are detected
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException) as caught:
        rekognition.detect_labels(Image=s3_image(key))

    # THEN the service's wording is used
    assert caught.value.response["Error"]["Message"] == "Request has invalid image format"


def test_image_with_valid_magic_and_corrupt_body_raises_invalid_image_format(s3: Any, rekognition: Any) -> None:
    # GIVEN a JPEG whose header is valid but whose body is truncated and garbled (Pillow cannot decode it)
    body = corrupt_jpeg_bytes()
    assert body[:3] == b"\xff\xd8\xff"
    s3.put_object(Bucket=BUCKET, Key="corrupt.jpg", Body=body)

    # WHEN labels are detected, from S3 and from inline bytes
    # THEN both are refused as the service refuses an undecodable image
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_labels(Image=s3_image("corrupt.jpg"))
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_labels(Image={"Bytes": body})


@pytest.mark.parametrize(
    ("operation", "size", "refused"),
    [
        pytest.param("detect_labels", (79, 200), True, id="labels-79px-wide"),
        pytest.param("detect_labels", (200, 79), True, id="labels-79px-high"),
        pytest.param("detect_labels", (80, 80), False, id="labels-80px"),
        pytest.param("detect_protective_equipment", (64, 64), False, id="ppe-64px"),
        pytest.param("detect_protective_equipment", (63, 100), True, id="ppe-63px"),
    ],
)
def test_image_below_minimum_dimensions_raises_invalid_parameter(
    s3: Any, rekognition: Any, operation: str, size: tuple[int, int], refused: bool
) -> None:
    # GIVEN a valid image of the given size (80 px minimum, 64 px for PPE: limits.html)
    s3.put_object(Bucket=BUCKET, Key="small.png", Body=png_bytes(5, size))

    # WHEN it is analysed
    call = getattr(rekognition, operation)
    # THEN an image under the minimum gets InvalidParameterException, one at the minimum is analysed
    if refused:
        with pytest.raises(rekognition.exceptions.InvalidParameterException) as caught:
            call(Image=s3_image("small.png"))
        assert caught.value.response["Error"]["Message"] == "Request has invalid parameters"
    else:
        assert call(Image=s3_image("small.png"))["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_search_faces_by_image_without_a_face_raises_invalid_parameter(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN an image in which the simulator sees no face (DetectFaces agrees) and one with faces
    sim = make_sim()
    rekognition = client_for(sim)
    s3.put_object(Bucket=BUCKET, Key="landscape.jpg", Body=FACELESS_JPEG)
    assert sim.face_count(FACELESS_JPEG) == 0 and sim.face_count(JPEG) > 0
    assert rekognition.detect_faces(Image=s3_image("landscape.jpg"))["FaceDetails"] == []

    # WHEN the collection is searched with each
    # THEN the face-less one gets the service's InvalidParameterException and message
    with pytest.raises(rekognition.exceptions.InvalidParameterException) as caught:
        rekognition.search_faces_by_image(CollectionId="staff", Image=s3_image("landscape.jpg"))
    assert caught.value.response["Error"]["Message"] == "There are no faces in the image. Should be at least 1."
    assert "FaceMatches" in rekognition.search_faces_by_image(CollectionId="staff", Image=s3_image("photo.jpg"))
    assert len(rekognition.detect_faces(Image=s3_image("photo.jpg"))["FaceDetails"]) == sim.face_count(JPEG)


def test_sample_images_are_above_the_minimum(rekognition: Any) -> None:
    # GIVEN the project's generated samples at their default sizes
    # WHEN / THEN the simulator analyses them (they decode and pass the 80-pixel minimum)
    for body in (jpeg_bytes(3), png_bytes(4)):
        assert rekognition.detect_labels(Image={"Bytes": body})["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_image_too_large_raises_image_too_large(s3: Any, rekognition: Any) -> None:
    # GIVEN a JPEG just over 15 MB in S3 and inline bytes just over 5 MB
    s3.put_object(Bucket=BUCKET, Key="huge.jpg", Body=JPEG + b"\x00" * (15 * 1024 * 1024))
    too_many_bytes = JPEG + b"\x00" * (5 * 1024 * 1024)

    # WHEN both are analysed
    # THEN both raise ImageTooLargeException
    with pytest.raises(rekognition.exceptions.ImageTooLargeException):
        rekognition.detect_labels(Image=s3_image("huge.jpg"))
    with pytest.raises(rekognition.exceptions.ImageTooLargeException):
        rekognition.detect_faces(Image={"Bytes": too_many_bytes})


def test_image_version_is_honoured(s3: Any, rekognition: Any) -> None:
    # GIVEN a versioned object whose first version is a JPEG and whose latest is not an image
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="versioned.jpg", Body=JPEG)["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="versioned.jpg", Body=b"not an image")

    # WHEN the first version and the latest are analysed
    response = rekognition.detect_labels(Image=s3_image("versioned.jpg", version=first))

    # THEN the pinned version is read and the latest one is rejected
    assert response["Labels"]
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_labels(Image=s3_image("versioned.jpg"))


def test_image_access_denied_raises_access_denied(aws: None, client_for: Callable[..., Any]) -> None:
    # GIVEN an S3 client that S3 refuses (moto does not enforce IAM, so it is faked)
    class DeniedS3:
        def head_object(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    with RekognitionSimulator(SimulatorConfig(), s3_client=DeniedS3()) as sim:
        rekognition = client_for(sim)

        # WHEN an image operation reads the object
        # THEN Rekognition's AccessDeniedException is raised
        with pytest.raises(rekognition.exceptions.AccessDeniedException):
            rekognition.detect_labels(Image=s3_image())


def test_search_faces_unknown_collection_raises_resource_not_found(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN a simulator where only the "staff" collection exists
    rekognition = client_for(make_sim(collections={"staff"}))

    # WHEN another collection is searched
    # THEN ResourceNotFoundException is raised, and the known one works
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.search_faces_by_image(CollectionId="visitors", Image=s3_image())
    assert "FaceMatches" in rekognition.search_faces_by_image(CollectionId="staff", Image=s3_image())


def test_detect_custom_labels_unknown_project_version_raises_resource_not_found(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN a simulator with one running model version
    rekognition = client_for(make_sim(project_versions={PROJECT_VERSION_ARN}))

    # WHEN a different version is used
    # THEN ResourceNotFoundException is raised
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.detect_custom_labels(ProjectVersionArn=PROJECT_VERSION_ARN[:-1] + "1", Image=s3_image())


def test_constraint_violation_raises_validation_exception(rekognition: Any) -> None:
    # GIVEN a MinConfidence above 100, which botocore does not check but the service does
    # WHEN labels are detected
    with pytest.raises(ClientError) as caught:
        rekognition.detect_labels(Image=s3_image(), MinConfidence=150)

    # THEN the service's ValidationException names the member and the constraint
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "at 'minConfidence'" in error["Message"]


def test_unsupported_operation_raises_unknown_operation(rekognition: Any) -> None:
    # GIVEN an operation the simulator does not implement
    # WHEN it is called
    with pytest.raises(ClientError) as caught:
        rekognition.list_collections()

    # THEN a clear error names it
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"


def test_tps_quota_throttles_and_refills_on_simulated_clock(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN a quota of 5 DetectLabels per second on a frozen clock
    clock = SimClock(scale=0)
    sim = make_sim(clock=clock, tps_quotas={"DetectLabels": 5})
    rekognition = client_for(sim)

    # WHEN 8 calls arrive within the same simulated second
    outcomes = []
    for _ in range(8):
        try:
            rekognition.detect_labels(Image=s3_image())
            outcomes.append("ok")
        except rekognition.exceptions.ThrottlingException:
            outcomes.append("throttled")

    # THEN 5 pass, 3 are throttled, the stats agree, and a simulated second later calls pass again
    assert outcomes == ["ok"] * 5 + ["throttled"] * 3
    assert sim.stats.calls["DetectLabels"] == 8
    assert sim.stats.throttled["DetectLabels"] == 3
    assert sim.stats.errors["DetectLabels"]["ThrottlingException"] == 3
    assert sim.stats.throttled["DetectFaces"] == 0
    rekognition.detect_faces(Image=s3_image())  # other operations are unlimited
    clock.advance(1.0)
    rekognition.detect_labels(Image=s3_image())

    # AND the error code can be switched mid-run
    sim.config.throttle_error = "ProvisionedThroughputExceededException"
    for _ in range(4):
        rekognition.detect_labels(Image=s3_image())
    with pytest.raises(rekognition.exceptions.ProvisionedThroughputExceededException):
        rekognition.detect_labels(Image=s3_image())


def test_throttle_rate_injects_throttling(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN every call set to be throttled
    sim = make_sim(throttle_rate=1.0)
    rekognition = client_for(sim)

    # WHEN a call is made, then the fault is switched off and it is made again
    with pytest.raises(rekognition.exceptions.ThrottlingException):
        rekognition.detect_text(Image=s3_image())
    sim.config.throttle_rate = 0.0
    rekognition.detect_text(Image=s3_image())

    # THEN the log shows one throttle then one success
    assert [record.outcome for record in sim.stats.call_log] == ["ThrottlingException", "ok"]


def test_inject_errors_fails_the_next_calls(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN two injected throttles on DetectLabels and one server error on DetectText
    sim = make_sim()
    rekognition = client_for(sim)
    sim.inject_errors("DetectLabels", "ProvisionedThroughputExceededException", times=2)
    sim.inject_errors("DetectText", "InternalServerError")

    # WHEN each operation is called until it works
    outcomes = []
    for operation in ("detect_labels", "detect_labels", "detect_labels", "detect_text", "detect_text"):
        try:
            getattr(rekognition, operation)(Image=s3_image())
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    # THEN exactly the injected calls failed, throttles counted as such, and the 500 kept its code
    assert outcomes == [
        "ProvisionedThroughputExceededException",
        "ProvisionedThroughputExceededException",
        "ok",
        "InternalServerError",
        "ok",
    ]
    assert sim.stats.throttled["DetectLabels"] == 2
    assert sim.stats.throttled["DetectText"] == 0
    assert sim.stats.errors["DetectText"]["InternalServerError"] == 1


def test_standard_retry_mode_rides_out_a_quota(s3: Any, make_sim: Callable[..., RekognitionSimulator]) -> None:
    # GIVEN a 1 TPS quota on a frozen clock that moves on only once the simulator has throttled a call
    # (so however loaded the machine, the second call meets the spent quota), and a client with
    # botocore's standard retry mode
    clock = SimClock(scale=0)
    sim = make_sim(clock=clock, tps_quotas={"DetectLabels": 1})
    retrying = Config(retries={"total_max_attempts": 10, "mode": "standard"})
    rekognition = boto3.client("rekognition", endpoint_url=sim.endpoint_url, config=retrying)
    rekognition.detect_labels(Image=s3_image())

    def advance_after_first_throttle() -> None:
        deadline = time.monotonic() + 30
        while not sim.stats.throttled["DetectLabels"] and time.monotonic() < deadline:
            time.sleep(0.005)
        clock.advance(1.0)

    threading.Thread(target=advance_after_first_throttle, daemon=True).start()

    # WHEN a second call is made within the same simulated second
    response = rekognition.detect_labels(Image=s3_image())

    # THEN botocore retried the ThrottlingException until the quota refilled
    assert response["ResponseMetadata"]["RetryAttempts"] >= 1
    assert sim.stats.succeeded["DetectLabels"] == 2
    assert sim.stats.throttled["DetectLabels"] == response["ResponseMetadata"]["RetryAttempts"]


def test_stats_achieved_tps_uses_simulated_time(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN a frozen clock advanced by 1 simulated second between calls
    clock = SimClock(scale=0)
    sim = make_sim(clock=clock)
    rekognition = client_for(sim)

    # WHEN 5 calls are made over 4 simulated seconds
    for index in range(5):
        if index:
            clock.advance(1.0)
        rekognition.detect_moderation_labels(Image=s3_image())

    # THEN the achieved rate is 5 calls / 4 s
    assert sim.stats.achieved_tps("DetectModerationLabels") == pytest.approx(1.25)
    assert sim.stats.snapshot()["succeeded"] == {"DetectModerationLabels": 5}


def test_same_seed_gives_same_results(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN two simulators with seed 42 and one with seed 43
    first, second, other = (client_for(make_sim(seed=seed)) for seed in (42, 42, 43))

    # WHEN each analyses the same image
    def analyse(client: Any) -> list[Any]:
        return [
            client.detect_labels(Image=s3_image())["Labels"],
            client.detect_faces(Image=s3_image(), Attributes=["ALL"])["FaceDetails"],
            client.detect_text(Image=s3_image())["TextDetections"],
        ]

    # THEN equal seeds agree exactly and a different seed differs
    assert analyse(first) == analyse(second)
    assert analyse(first) != analyse(other)


def test_endpoint_env_var_routes_default_clients(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN AWS_ENDPOINT_URL_REKOGNITION set the way the Lambda handlers get it
    sim = make_sim()
    for name, value in sim.environment().items():
        monkeypatch.setenv(name, value)

    # WHEN a plain client is created, as a handler would, inside moto's mock
    response = boto3.client("rekognition", config=NO_RETRIES).detect_labels(Image=s3_image())

    # THEN the call reached the simulator while S3 stayed mocked
    assert response["LabelModelVersion"]
    assert sim.stats.succeeded["DetectLabels"] == 1


def test_latency_delays_every_call(
    s3: Any, make_sim: Callable[..., RekognitionSimulator], client_for: Callable[..., Any]
) -> None:
    # GIVEN 50 ms of added latency
    rekognition = client_for(make_sim(latency=0.05))

    # WHEN a call is timed
    started = time.perf_counter()
    rekognition.detect_labels(Image={"Bytes": JPEG})

    # THEN it took at least that long
    assert time.perf_counter() - started >= 0.05
