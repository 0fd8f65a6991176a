"""Errors of ``rekpipe report``: each names what it could not read or write and what to do next."""

from __future__ import annotations

from typing import Any

from rekpipe.cli.exceptions import UserException


class ReportError(UserException):
    """Base class of the report's user-fixable errors (exit 1, one line)."""


class ReportSourceError(ReportError):
    """The bucket, prefix or folder to report on cannot be read."""

    def __init__(self, source: str, reason: Any) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"Cannot read {source} ({reason}): pass the output bucket (s3://bucket/prefix) or the "
                         "folder `rekpipe local run --out` wrote")


class NoManifestsError(ReportError):
    """Nothing to report: no pipeline manifest under the source."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"No manifest.json of the pipeline under {source}: check the prefix, or wait for the "
                         "pipeline to finish some objects (`rekpipe status`)")


class ReportTargetError(ReportError):
    """The folder to write the report to holds something that is not a report."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        super().__init__(f"{folder} exists and is not a rekpipe report: pass an empty or new folder with --out")
