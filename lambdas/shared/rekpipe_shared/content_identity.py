"""What an object's bytes are, from S3's own checksums: the key under which results are reused.

Two objects have the same content identity only when S3 vouches for a digest of *all* their bytes
with the same algorithm. The rules, from the S3 User Guide ("Checking object integrity in Amazon S3",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html) and the AWS
SDKs and Tools Reference Guide ("Data Integrity Protections for Amazon S3",
https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html):

- HeadObject returns the stored checksum only with ``ChecksumMode=ENABLED``.
- A ``FULL_OBJECT`` checksum covers the whole object, however it was uploaded. A checksum of a
  single-part upload is a full-object checksum too.
- A ``COMPOSITE`` checksum of a multipart upload is a checksum of the parts' checksums (its value
  ends in ``-<parts>``): it depends on the part size, so the same bytes uploaded in other parts
  have another value. It is never an identity.
- S3 adds a CRC64NVME checksum to an upload that carries none, and current SDKs send a CRC by
  default, so most objects have one.
- The ETag of a single-part upload encrypted with SSE-S3 (or unencrypted) is the MD5 of its bytes.
  A multipart ETag (``<hex>-<parts>``) depends on the part size, and the ETag of an SSE-KMS, DSSE-KMS
  or SSE-C object is not an MD5 of its data (S3 API Reference, "Object", ETag), so neither is used.

32-bit CRCs (CRC32, CRC32C) are deliberately not identities: among a few tens of thousands of
objects of one size two different ones would share a value by chance (birthday bound of 2^32),
and a false match would hand an object another object's results. The object's size is part of
every identity, and only values of the same algorithm are ever compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHECKSUM_FIELDS: dict[str, str] = {
    "CRC64NVME": "ChecksumCRC64NVME",
    "SHA256": "ChecksumSHA256",
    "SHA1": "ChecksumSHA1",
}
"""Checksums strong enough to be an identity, most widely present first (S3's default comes first,
so two copies of one file most often meet under it)."""
WEAK_CHECKSUM_FIELDS = ("ChecksumCRC32", "ChecksumCRC32C")
"""32 bits: never an identity on their own (see the module docstring)."""
ETAG_ALGORITHM = "MD5"
FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"
_MULTIPART_SUFFIX = re.compile(r"-\d+$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
_NOT_MD5_ENCRYPTION = frozenset({"aws:kms", "aws:kms:dsse"})


@dataclass(frozen=True)
class ContentIdentity:
    """One digest of all of an object's bytes.

    Parameters
    ----------
    algorithm: str
        ``CRC64NVME``, ``SHA256``, ``SHA1`` or ``MD5`` (the ETag of a single-part upload).
    value: str
        The digest as S3 returns it (base64 for checksums, hex for the ETag).
    size: int
        The object's length in bytes.
    """

    algorithm: str
    value: str
    size: int

    @property
    def token(self) -> str:
        """``<algorithm>:<value>:<size>``: equal tokens mean the same bytes."""
        return f"{self.algorithm}:{self.value}:{self.size}"

    @classmethod
    def from_token(cls, token: str) -> ContentIdentity:
        algorithm, rest = token.split(":", 1)
        value, size = rest.rsplit(":", 1)
        return cls(algorithm, value, int(size))


def identities_from_head(head: dict[str, Any]) -> tuple[ContentIdentity, ...]:
    """Every usable identity of an object, from a HeadObject response made with ``ChecksumMode=ENABLED``.

    The first is the preferred one (the leader claims under it); results are indexed under all of
    them, so a copy that carries only one of them still finds the result. Empty when S3 vouches for
    no digest of the whole object: such an object is analysed as usual.
    """
    size = head.get("ContentLength")
    if size is None:
        return ()
    etag = str(head.get("ETag") or "").strip('"')
    multipart = bool(_MULTIPART_SUFFIX.search(etag)) or int(head.get("PartsCount") or 0) > 1
    checksum_type = head.get("ChecksumType")
    whole_object_checksum = checksum_type == FULL_OBJECT or (checksum_type is None and not multipart)
    found: list[ContentIdentity] = []
    if whole_object_checksum:
        for algorithm, name in CHECKSUM_FIELDS.items():
            value = head.get(name)
            if value and not _MULTIPART_SUFFIX.search(value):  # a composite value names its parts
                found.append(ContentIdentity(algorithm, str(value), int(size)))
    encrypted_otherwise = (head.get("ServerSideEncryption") in _NOT_MD5_ENCRYPTION
                           or bool(head.get("SSECustomerAlgorithm")))
    if not multipart and not encrypted_otherwise and _MD5_HEX.match(etag):
        found.append(ContentIdentity(ETAG_ALGORITHM, etag, int(size)))
    return tuple(found)


def read_identities(s3: S3Client, bucket: str, key: str, version_id: str | None) -> tuple[ContentIdentity, ...]:
    """HeadObject the exact version with ``ChecksumMode=ENABLED`` and return its identities.

    A failed HEAD (deleted object, no access) gives no identity: the analysis then runs as usual and
    reports the object's own error.
    """
    request: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if version_id and version_id != "null":
        request["VersionId"] = version_id
    try:
        head = s3.head_object(**request)
    except (ClientError, BotoCoreError):
        return ()
    return identities_from_head(head)


__all__ = ["ContentIdentity", "identities_from_head", "read_identities"]
