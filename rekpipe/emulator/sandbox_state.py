"""What a Lambda sandbox keeps to itself and one process would share: Powertools' metric sets.

Powertools' ``Metrics`` keeps its metrics, dimensions and metadata in class-level dicts that every instance in
the process shares (``aws_lambda_powertools/metrics/metrics.py``: "we share the same metric set across
instances"). In Lambda a process is one sandbox running one invocation at a time, so that is safe. The embedded
runtime runs every handler in one process, several at once: one handler's ``flush_metrics`` iterated the dict
while another handler added to it, and the flushing handler failed with ``RuntimeError: dictionary changed size
during iteration`` (a CI run of the faults local run, where that left a video IN_PROGRESS), or flushed another
function's metrics under its own service name.

While installed (by the Lambda adapter), those three dicts are replaced by :class:`PerInvocationDict`, whose
contents belong to the running invocation (:func:`isolated`): each invocation starts with the default dimensions
and nothing else, as a fresh sandbox's first invocation does, and what it adds is flushed and cleared by itself
alone. Outside any invocation the dict is one process-wide dict, as before. Not isolated: the provider
instance's ``timestamp`` and ``dimension_sets`` (multi-dimension-set metrics), which no handler uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.metrics import Metrics

_SHARED_SETS = ("_metrics", "_dimensions", "_metadata")


class PerInvocationDict(MutableMapping[str, Any]):
    """A dict whose contents belong to the running invocation (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self._current: ContextVar[dict[str, Any] | None] = ContextVar(name, default=None)
        self._outside: dict[str, Any] = {}

    def _data(self) -> dict[str, Any]:
        data = self._current.get()
        return self._outside if data is None else data

    def begin(self, initial: dict[str, Any]) -> Any:
        """Give the current context its own contents; returns the token for :meth:`end`."""
        return self._current.set(dict(initial))

    def end(self, token: Any) -> None:
        self._current.reset(token)

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return f"PerInvocationDict({self._data()!r})"


_installed: dict[str, Any] = {}


def install() -> None:
    """Replace Powertools' shared metric dicts before any handler module creates its ``Metrics`` (idempotent)."""
    if _installed:
        return
    for name in _SHARED_SETS:
        _installed[name] = getattr(Metrics, name)
        setattr(Metrics, name, PerInvocationDict(f"rekpipe_powertools{name}"))


def uninstall() -> None:
    """Put Powertools' own dicts back."""
    for name, original in _installed.items():
        setattr(Metrics, name, original)
    _installed.clear()


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run the body as one invocation: its metrics, dimensions and metadata are its own."""
    if not _installed:
        yield
        return
    defaults = {name: value if isinstance(value, str) else str(value)
                for name, value in Metrics._default_dimensions.items()}
    tokens = []
    for name in _SHARED_SETS:
        store = getattr(Metrics, name)
        tokens.append((store, store.begin(defaults if name == "_dimensions" else {})))
    try:
        yield
    finally:
        for store, token in reversed(tokens):
            store.end(token)
