"""The errors of ``rekpipe local``: each a one-line :class:`~rekpipe.cli.exceptions.UserException` (exit 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rekpipe.cli.exceptions import UserException

if TYPE_CHECKING:
    from rekpipe.cli.local.results import LocalRunResult


class LocalRunIncompleteError(UserException):
    """Some uploaded objects have no final status (lost, or still running at the timeout)."""

    def __init__(self, result: LocalRunResult, timeout: float) -> None:
        self.result = result
        self.timeout = timeout
        shown = ", ".join(f"{o.key} ({o.status})" for o in result.lost[:5])
        more = f" and {len(result.lost) - 5} more" if len(result.lost) > 5 else ""
        super().__init__(
            f"{len(result.lost)} of {sum(o.analysed for o in result.objects)} objects have no final status after "
            f"{timeout:g} s: {shown}{more}; run again with a longer --timeout, or look at {result.log_path}"
        )


__all__ = ["LocalRunIncompleteError"]
