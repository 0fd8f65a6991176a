"""Typed settings from CDK context: ``settings`` (a dict in ``cdk.json``) plus ``-c name=value`` overrides."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from rekpipe_shared.exceptions import SettingsError
from rekpipe_shared.settings import PipelineSettings

if TYPE_CHECKING:
    from constructs import Node

SETTINGS_CONTEXT_KEY = "settings"
SETTING_NAMES = tuple(f.name for f in fields(PipelineSettings))


def settings_from_context(node: Node) -> PipelineSettings:
    """Read and validate the pipeline settings of an app.

    ``settings`` gives the base values (absent: every default); a context key named after a
    setting overrides it, which is what ``cdk synth -c image_batch_size=5`` produces.

    Raises
    ------
    SettingsError
        Naming the first bad setting, so synth stops before building anything.

    Example
    -------
    >>> settings_from_context(App(context={"image_batch_size": "5"}).node).image_batch_size
    5
    """
    raw = node.try_get_context(SETTINGS_CONTEXT_KEY)
    values = _as_mapping(raw)
    for name in SETTING_NAMES:
        override = node.try_get_context(name)
        if override is not None:
            values[name] = override
    return PipelineSettings.from_mapping(values)


def _as_mapping(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):  # -c settings='{"...": ...}' arrives as text
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise SettingsError(SETTINGS_CONTEXT_KEY, "must be a JSON object of settings", raw) from None
    if not isinstance(raw, dict):
        raise SettingsError(SETTINGS_CONTEXT_KEY, "must be an object of settings", raw)
    return dict(raw)
