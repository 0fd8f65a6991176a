"""Sign each AWS request with the credentials of whoever is acting on this thread.

In AWS every function, service and person has its own credentials. The embedded runtime runs all
of them in one process, where module-scope boto3 clients share one default session. So the caller's
identity travels in a :class:`contextvars.ContextVar` instead, and botocore's signer reads it:
:func:`acting_as` sets it for a block (an invocation, a poller's receive, a service's delivery), and
:func:`install_contextual_signing` makes ``RequestSigner.get_auth_instance`` sign with it. Outside
any such block a client signs with its own credentials, as usual.

A thread started inside a block does not inherit the identity (Python copies no context into new
threads); code that fans out to threads calls :func:`acting_as` in each worker.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from botocore.signers import RequestSigner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from botocore.credentials import Credentials

_current: ContextVar[Credentials | None] = ContextVar("rekpipe_acting_credentials", default=None)
_install_guard = threading.Lock()
_installed = 0
_original_get_auth_instance: Any = None
_fallback: Callable[[Credentials], Credentials | None] | None = None


def current_credentials() -> Credentials | None:
    """The credentials this thread acts with, or None (the client's own)."""
    return _current.get()


@contextmanager
def acting_as(credentials: Credentials | None) -> Iterator[None]:
    """Sign every request made in this block, on this thread, with ``credentials`` (None: the client's own)."""
    token = _current.set(credentials)
    try:
        yield
    finally:
        _current.reset(token)


def install_contextual_signing(fallback: Callable[[Credentials], Credentials | None] | None = None
                               ) -> Callable[[], None]:
    """Make botocore sign with :func:`current_credentials` when set; returns the function that undoes it.

    Parameters
    ----------
    fallback: Callable[[Credentials], Credentials | None] | None
        Called with a client's own credentials when no identity acts on the thread; what it returns
        (if not None) signs instead. The runtime uses it so that keys the emulator never issued (a
        client created before the runtime started) act as the operator.

    Nested installs are counted, so two runtimes in one process undo it only when the last one stops.
    """
    global _installed, _original_get_auth_instance, _fallback
    with _install_guard:
        _fallback = fallback
        if _installed == 0:
            original = RequestSigner.__dict__["get_auth_instance"]
            _original_get_auth_instance = original

            def get_auth_instance(self: RequestSigner, signing_name: str, region_name: str,
                                  signature_version: str | None = None, request_credentials: Any = None,
                                  **kwargs: Any) -> Any:
                acting = _current.get()
                if request_credentials is None:
                    if acting is not None:
                        request_credentials = acting
                    elif _fallback is not None and self._credentials is not None:
                        request_credentials = _fallback(self._credentials)
                return original(self, signing_name, region_name, signature_version, request_credentials, **kwargs)

            RequestSigner.get_auth_instance = get_auth_instance
        _installed += 1

    def uninstall() -> None:
        global _installed, _original_get_auth_instance, _fallback
        with _install_guard:
            _installed -= 1
            if _installed == 0:
                _fallback = None
                RequestSigner.get_auth_instance = _original_get_auth_instance
                _original_get_auth_instance = None

    return uninstall


__all__ = ["acting_as", "current_credentials", "install_contextual_signing"]
