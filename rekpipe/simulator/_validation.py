"""Server-side request validation driven by botocore's Rekognition service model.

Why: botocore checks only required members, types and minimums before sending; the service also
enforces maximum lengths, patterns and enums (a JobTag with a space, a 65-character
ClientRequestToken) and answers ``ValidationException``. Checking them here catches those bugs
offline instead of in the first deployment.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

import botocore.session

from .exceptions import RekognitionServiceError

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape

_MAX_REPORTED = 3


@functools.cache
def service_model() -> ServiceModel:
    """Rekognition's model from the installed botocore, loaded once."""
    return botocore.session.get_session().get_service_model("rekognition")


def operation_model(name: str) -> OperationModel | None:
    """The model of ``name``, or None if Rekognition has no such operation."""
    model = service_model()
    return model.operation_model(name) if name in model.operation_names else None


@functools.cache
def _pattern(expr: str) -> re.Pattern[str] | None:
    try:
        return re.compile(expr)
    except re.error:  # Java-only syntax such as \p{L} (tag keys); not worth emulating.
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    return "null" if value is None else f"'{value}'"


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for member in shape.required_members:
            if value.get(member) is None:
                problems.append(
                    f"Value null at '{path}{_camel(member)}' failed to satisfy constraint: Member must not be null"
                )
        for member, member_shape in shape.members.items():
            if value.get(member) is not None:
                _check(member_shape, value[member], f"{path}{_camel(member)}.", problems)
        return
    where = path.rstrip(".")
    if kind == "list" and isinstance(value, list):
        _check_length(value, meta, where, problems)
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{where}.{index}.member.", problems)
        return
    if kind == "string" and isinstance(value, str):
        _check_length(value, meta, where, problems)
        if shape.enum and value not in shape.enum:
            problems.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
        pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {meta['pattern']}"
            )
        return
    if kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "min" in meta and value < meta["min"]:
            problems.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {meta['min']}"
            )
        if "max" in meta and value > meta["max"]:
            problems.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {meta['max']}"
            )
    # Blobs are left to the operations: the image checks answer with Rekognition's own image errors.


def validate(operation: OperationModel, params: dict[str, Any]) -> None:
    """Raise ``ValidationException`` worded like AWS's if ``params`` break the input shape's constraints."""
    if operation.input_shape is None:
        return
    problems: list[str] = []
    _check(operation.input_shape, params, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        detail = "; ".join(problems[:_MAX_REPORTED])
        raise RekognitionServiceError("ValidationException", f"{count} validation {noun} detected: {detail}")


def _check_length(value: list[Any] | str, meta: dict[str, Any], where: str, problems: list[str]) -> None:
    """The service's min/max length messages, the same for lists and strings."""
    if "min" in meta and len(value) < meta["min"]:
        problems.append(
            f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {meta['min']}"
        )
    if "max" in meta and len(value) > meta["max"]:
        problems.append(
            f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {meta['max']}"
        )
