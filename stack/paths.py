"""Where the stack finds its assets, computed from this file so any working directory works."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
SHARED_LAYER_DIR = LAMBDAS_DIR / "shared"
STATEMACHINES_DIR = REPO_ROOT / "statemachines"
VIDEO_ASL_PATH = STATEMACHINES_DIR / "video_analysis.asl.json"
ASSET_EXCLUDES = ("__pycache__", "*.pyc", ".pytest_cache")
"""Never shipped: bytecode differs between machines and would change the asset hash."""


def function_dir(name: str) -> Path:
    """The folder of one function (``lambdas/<name>``), whose ``app.handler`` is the entry point."""
    return LAMBDAS_DIR / name
