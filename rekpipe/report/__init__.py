"""``rekpipe report``: a static HTML report of what Rekognition found, from the output bucket or a copy of it.

The report is one folder that a browser opens from disk: an index (counts by status, search by key
or label, the failed and partial objects, pagination over a small JSON index) and one page per
object version (an image with its boxes, or a video's timeline). Objects are found through their
``manifest.json``; everything else is read from the URIs the manifests give.
"""

from __future__ import annotations

from rekpipe.report.builder import IMAGE_MODES, ReportBuilder, ReportOptions, ReportResult, build_report
from rekpipe.report.exceptions import NoManifestsError, ReportError, ReportSourceError, ReportTargetError
from rekpipe.report.source import FolderSource, RateLimiter, S3Source

__all__ = ["IMAGE_MODES", "FolderSource", "NoManifestsError", "RateLimiter", "ReportBuilder", "ReportError",
           "ReportOptions", "ReportResult", "ReportSourceError", "ReportTargetError", "S3Source", "build_report"]
