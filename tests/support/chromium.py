"""Headless Chromium (Debian's ``chromium`` package) for tests that need a real browser.

No driver and no Python dependency: ``--dump-dom`` prints the DOM after the page's scripts ran,
``--screenshot`` writes a PNG. As root (CI), Chromium needs ``--no-sandbox``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_SECONDS = 120


def find_chromium() -> str | None:
    """The browser's executable, or None when none is installed."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(binary: str, *arguments: str) -> str:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-dev-shm-usage", "--virtual-time-budget=10000", *arguments]
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="disabled:")
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def dump_dom(binary: str, url: str) -> str:
    """The page's DOM, serialized after its scripts have run."""
    return _run(binary, "--dump-dom", url)


def screenshot(binary: str, url: str, path: Path, *, width: int = 1280, height: int = 1200) -> None:
    """A PNG of the page's first ``height`` pixels."""
    _run(binary, f"--window-size={width},{height}", f"--screenshot={path}", url)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot for {url}")
