"""S3 checksums as AWS computes them, where moto 5.2.5 departs (one fix of ``moto_fixes``).

1. CRC64NVME: without the optional ``awscrt`` package, ``moto.s3.utils.compute_checksum`` returns a
   *CRC32* under the name CRC64NVME. The fix computes the real CRC-64/NVME (reflected polynomial
   0x9a6c9329ac4bc9b5, initial value and final XOR all ones; check value of ``123456789`` is
   0xae8b14860a799888) in pure Python when ``awscrt`` is absent.
2. S3 calculates and stores a CRC64NVME checksum for an upload that carries no checksum (S3 User
   Guide, "Checking object integrity in Amazon S3"; SDKs and Tools Reference Guide, "Data Integrity
   Protections for Amazon S3", which says S3 does so for uploads by SDKs older than December 2024);
   moto stores none. The fix adds it on PutObject.

Not modelled: ``ChecksumType`` on single-part objects (AWS reports ``FULL_OBJECT``, moto nothing) and
the ``-<parts>`` suffix of a composite checksum; the pipeline's identity rules need neither.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from rekpipe.emulator.patching import replace, undo_all

if TYPE_CHECKING:
    from rekpipe.emulator.patching import Restore

_POLY_REFLECTED = 0x9A6C9329AC4BC9B5
_MASK = 0xFFFFFFFFFFFFFFFF


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc64nvme(data: bytes) -> int:
    """CRC-64/NVME of ``data``, the checksum S3 adds by default."""
    crc = _MASK
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK


def crc64nvme_base64(data: bytes) -> str:
    """The value as S3 returns it (``x-amz-checksum-crc64nvme``): base64 of the 8 big-endian bytes."""
    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode()


def s3_checksums_as_aws() -> Restore:
    """Install both corrections; returns the function that removes them."""
    from moto.core.compat import HAS_CRT
    from moto.s3 import models, responses, utils

    original_compute = utils.compute_checksum
    original_get = responses.S3Response._get_checksum

    def compute_checksum(body: bytes, algorithm: str, encode_base64: bool = True) -> bytes:
        if algorithm == "CRC64NVME" and not HAS_CRT:
            digest = crc64nvme(bytes(body)).to_bytes(8, "big")
            return base64.b64encode(digest) if encode_base64 else digest
        return original_compute(body, algorithm, encode_base64)

    def get_checksum(self: Any, response_headers: dict[str, Any]) -> tuple[str, str | None]:
        algorithm, value = original_get(self, response_headers)
        sent_any = any(str(name).lower().startswith(("x-amz-checksum-", "x-amz-sdk-checksum-"))
                       for name in self.headers)
        if not algorithm and not sent_any:
            value = compute_checksum(self.body or b"", "CRC64NVME").decode()
            response_headers["x-amz-checksum-crc64nvme"] = value
            return "CRC64NVME", value
        return algorithm, value

    return undo_all([*(replace(module, "compute_checksum", compute_checksum) for module in (utils, models, responses)),
                     replace(responses.S3Response, "_get_checksum", get_checksum)])


__all__ = ["crc64nvme", "crc64nvme_base64", "s3_checksums_as_aws"]
