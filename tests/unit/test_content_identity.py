"""Content identity: which HeadObject fields vouch for all of an object's bytes (S3 User Guide,
"Checking object integrity in Amazon S3"). Responses are shaped as AWS returns them."""

from __future__ import annotations

from rekpipe_shared.content_identity import ContentIdentity, identities_from_head

MD5 = "6b5e0d443e2d48c440e0463583bb59e5"


def test_content_identity_single_part_has_its_checksum_then_its_md5_etag():
    # GIVEN a single-part upload with S3's default CRC64NVME (AWS reports it FULL_OBJECT)
    head = {"ContentLength": 10, "ETag": f'"{MD5}"', "ChecksumCRC64NVME": "AAAAAAAAAAA=", "ChecksumType": "FULL_OBJECT"}
    # WHEN / THEN the checksum comes first, the ETag (its MD5) second
    assert identities_from_head(head) == (ContentIdentity("CRC64NVME", "AAAAAAAAAAA=", 10),
                                          ContentIdentity("MD5", MD5, 10))


def test_content_identity_full_object_multipart_checksum_counts_but_not_its_etag():
    # GIVEN a multipart upload with a full-object CRC64NVME
    head = {"ContentLength": 10, "ETag": '"299342bb051b6852aa99fdc733b5d8f9-2"', "ChecksumCRC64NVME": "AAAAAAAAAAA=",
            "ChecksumType": "FULL_OBJECT"}
    # WHEN / THEN only the checksum is an identity
    assert identities_from_head(head) == (ContentIdentity("CRC64NVME", "AAAAAAAAAAA=", 10),)


def test_content_identity_composite_multipart_has_none():
    # GIVEN a multipart upload with a composite SHA256 (a checksum of the parts' checksums)
    head = {"ContentLength": 10, "ETag": '"299342bb051b6852aa99fdc733b5d8f9-2"', "ChecksumSHA256": "abc=-2",
            "ChecksumType": "COMPOSITE"}
    # WHEN / THEN nothing vouches for the whole object: analysed as usual
    assert identities_from_head(head) == ()


def test_content_identity_never_uses_a_32_bit_crc_or_a_kms_etag():
    # GIVEN an SSE-KMS single-part object with only a CRC32 (its ETag is not an MD5 of the data)
    head = {"ContentLength": 10, "ETag": f'"{MD5}"', "ChecksumCRC32": "Xg5djw==", "ServerSideEncryption": "aws:kms"}
    # WHEN / THEN it has no identity
    assert identities_from_head(head) == ()
    # AND under SSE-S3 the same object is known by its MD5 ETag only
    head["ServerSideEncryption"] = "AES256"
    assert identities_from_head(head) == (ContentIdentity("MD5", MD5, 10),)


def test_content_identity_token_round_trips_and_includes_the_size():
    # GIVEN an identity / WHEN it is written as a token and read back / THEN it is equal, size included
    identity = ContentIdentity("SHA256", "a:b=", 123)
    assert ContentIdentity.from_token(identity.token) == identity
    assert identity.token != ContentIdentity("SHA256", "a:b=", 124).token
