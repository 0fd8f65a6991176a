"""Replacing one attribute of a module or class, reversibly: the shape every moto fix has.

A fix saves what it replaces and returns the function that puts it back, so the embedded runtime can
undo every fix when it stops (``rekpipe.emulator.moto_fixes.install``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    Restore = Callable[[], None]

_ABSENT = object()


def replace(owner: Any, name: str, value: Any) -> Restore:
    """Set ``owner.<name>`` to ``value``; returns the function that restores what ``owner`` itself held
    (or removes the attribute again, when ``owner`` only inherited it)."""
    saved = vars(owner).get(name, _ABSENT)
    setattr(owner, name, value)

    def restore() -> None:
        if saved is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, saved)

    return restore


def undo_all(restores: Iterable[Restore]) -> Restore:
    """One function that runs ``restores`` in reverse order (the last replacement is undone first)."""
    pending = list(restores)

    def restore() -> None:
        for undo in reversed(pending):
            undo()

    return restore
