"""Each invocation sees its own function's environment, though every handler runs in one process.

In AWS each function's sandbox has only the variables its configuration sets. The embedded runtime runs every
handler in one process, so ``os.environ`` would let a handler read a variable the stack gave only to another
function, and that handler would then fail on its first invocation in a real account (``KeyError``) while every
local test passed.

:class:`InvocationEnviron` stands in for ``os.environ`` while the Lambda adapter is installed. A variable that some
deployed function sets is *managed*: inside an invocation (:func:`invocation_environment`) it has the invoked
function's value, or is absent if that function does not set it; outside any invocation it reads through to the
process environment, as before. Every other variable (``AWS_REGION``, credentials, endpoint overrides, a test's
own knobs) always reads through. Writes go to the process environment.

Not modelled: a thread a handler starts itself (a ``ThreadPoolExecutor`` worker) does not inherit the
invocation's context, so it reads the process environment; Lambda's reserved variables are not hidden.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

_current: ContextVar[Mapping[str, str] | None] = ContextVar("rekpipe_invocation_environment", default=None)


class InvocationEnviron(MutableMapping[str, str]):
    """``os.environ`` as the running invocation sees it (see the module docstring).

    Parameters
    ----------
    base: MutableMapping[str, str]
        The process environment (the real ``os.environ``); every write goes there.
    """

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self._managed: set[str] = set()
        self._lock = threading.Lock()

    def manage(self, names: set[str] | frozenset[str]) -> None:
        """Hide ``names`` from every invocation whose function does not set them."""
        with self._lock:
            self._managed |= set(names)

    @property
    def managed(self) -> frozenset[str]:
        return frozenset(self._managed)

    def _hidden(self, key: str) -> bool:
        own = _current.get()
        return own is not None and key in self._managed and key not in own

    def __getitem__(self, key: str) -> str:
        own = _current.get()
        if own is not None and key in self._managed:
            if key in own:
                return own[key]
            raise KeyError(key)
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.base[key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[key]

    def __iter__(self) -> Iterator[str]:
        own = _current.get() or {}
        seen = set()
        for key in list(self.base):
            if not self._hidden(key):
                seen.add(key)
                yield key
        for key in own:
            if key in self._managed and key not in seen:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        """A plain dict, as ``os.environ.copy()`` returns."""
        return dict(self)

    # os._Environ's helpers that some libraries call
    def setdefault(self, key: str, default: str = "") -> str:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            self.base[key] = default
            return default

    def __repr__(self) -> str:
        return f"InvocationEnviron({dict(self)!r})"

    def __getattr__(self, name: str) -> Any:  # encodekey, decodevalue... of os._Environ
        return getattr(self.base, name)


@contextlib.contextmanager
def invocation_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Run the body as an invocation of a function whose environment is ``variables``."""
    token = _current.set(dict(variables))
    try:
        yield
    finally:
        _current.reset(token)


def install() -> InvocationEnviron:
    """Put an :class:`InvocationEnviron` in place of ``os.environ`` (idempotent); :func:`uninstall` undoes it."""
    if isinstance(os.environ, InvocationEnviron):
        return os.environ
    environ = InvocationEnviron(os.environ)
    os.environ = environ  # type: ignore[assignment]  # noqa: B003 - a view over the same process environment
    return environ


def uninstall() -> None:
    """Restore the process's own ``os.environ``."""
    if isinstance(os.environ, InvocationEnviron):
        os.environ = os.environ.base  # type: ignore[assignment]  # noqa: B003 - the original object back
