"""Lambda event filtering for the emulator's event source pollers.

An event source mapping's ``FilterCriteria`` holds up to 5 patterns (more by quota); a record is
delivered when it matches any of them, and a record that matches none is dropped for good: Lambda
never sends it and moves past it ("Control which events Lambda sends to your function", Lambda
Developer Guide). A pattern is a JSON object: every key it names must match, keys it does not name
are ignored; a nested object descends into the record; a leaf is a list of rules, any of which may
match. The rules implemented are those the guide lists:

- a literal (string, number, ``true``/``false``, ``null``): equality;
- ``{"exists": true|false}``: the field is present or absent;
- ``{"prefix": s}``, ``{"suffix": s}``, ``{"equals-ignore-case": s}``;
- ``{"anything-but": v | [v, ...]}``: present and none of these values;
- ``{"numeric": ["<", 10, ">=", 2]}``: every comparison holds.

When the record's field is a list, the rules match if any element matches (as the guide says for
arrays). For DynamoDB Streams the record is matched as Lambda delivers it: ``eventName``, the
``dynamodb`` object with ``Keys``/``NewImage``/``OldImage`` in DynamoDB JSON.
"""

from __future__ import annotations

import json
import operator
from typing import Any

_MISSING = object()
_NUMERIC = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">": operator.gt, ">=": operator.ge}


def parse_filter_criteria(criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The patterns of a mapping's ``FilterCriteria`` (``{"Filters": [{"Pattern": "<json>"}]}``)."""
    return [json.loads(f["Pattern"]) if isinstance(f["Pattern"], str) else f["Pattern"]
            for f in (criteria or {}).get("Filters", [])]


def matches_any(patterns: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    """True when there is no filter, or the record matches at least one pattern."""
    return not patterns or any(matches(pattern, record) for pattern in patterns)


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """True when the record matches every key of one pattern."""
    for key, expected in pattern.items():
        value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
        if isinstance(expected, dict):
            if not matches(expected, value if isinstance(value, dict) else {}):
                return False
        elif isinstance(expected, list):
            if not _leaf_matches(expected, value):
                return False
        else:
            raise ValueError(f"filter pattern values must be objects or lists of rules, not {expected!r}")
    return True


def _leaf_matches(rules: list[Any], value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    return any(_rule_matches(rule, candidate) for rule in rules for candidate in candidates or [_MISSING])


def _rule_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return value is not _MISSING and value == rule and type(value) is type(rule)
    if "exists" in rule:
        return (value is not _MISSING) == bool(rule["exists"])
    if value is _MISSING:
        return False
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "suffix" in rule:
        return isinstance(value, str) and value.endswith(rule["suffix"])
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        return value not in (excluded if isinstance(excluded, list) else [excluded])
    if "numeric" in rule:
        terms = rule["numeric"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return all(_NUMERIC[terms[i]](value, terms[i + 1]) for i in range(0, len(terms), 2))
    raise ValueError(f"unsupported filter rule {rule!r}")
