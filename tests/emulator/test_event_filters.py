"""Lambda event filtering as the emulator's stream poller applies it (rekpipe.emulator.event_filters)."""

from __future__ import annotations

import pytest

from rekpipe.emulator.event_filters import matches, matches_any, parse_filter_criteria

RECORD = {
    "eventName": "MODIFY",
    "dynamodb": {
        "Keys": {"task_id": {"S": "abc"}},
        "NewImage": {"task_id": {"S": "abc"}, "status": {"S": "QUEUED"}, "size": {"N": "12"}, "prev_status": {"S": "PENDING"}},
        "OldImage": {"task_id": {"S": "abc"}, "status": {"S": "PENDING"}},
    },
    "tags": ["a", "b"],
    "count": 7,
}


@pytest.mark.parametrize(("pattern", "expected"), [
    ({"eventName": ["MODIFY"]}, True),
    ({"eventName": ["INSERT", "REMOVE"]}, False),
    ({"dynamodb": {"NewImage": {"prev_status": {"S": [{"exists": True}]}}}}, True),
    ({"dynamodb": {"OldImage": {"prev_status": {"S": [{"exists": True}]}}}}, False),
    ({"dynamodb": {"OldImage": {"prev_status": [{"exists": False}]}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"prefix": "QUE"}]}}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"suffix": "ING"}]}}}}, False),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["PENDING"]}]}}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"equals-ignore-case": "queued"}]}}}}, True),
    ({"count": [{"numeric": [">", 5, "<=", 7]}]}, True),
    ({"count": [{"numeric": [">", 7]}]}, False),
    ({"tags": ["b"]}, True),
    ({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"media_type": {"S": [{"exists": True}]}}}}, False),
])
def test_filter_rules_match_as_documented(pattern, expected):
    # GIVEN a DynamoDB stream record and one pattern
    # WHEN / THEN every key the pattern names must match, by the rule it gives
    assert matches(pattern, RECORD) is expected


def test_filter_criteria_are_ored_and_absent_criteria_pass_everything():
    # GIVEN a mapping's FilterCriteria as CloudFormation holds it (patterns as JSON strings)
    patterns = parse_filter_criteria({"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'},
                                                  {"Pattern": '{"eventName": ["MODIFY"]}'}]})

    # WHEN / THEN a record matching either passes, one matching neither is dropped, no filter drops nothing
    assert matches_any(patterns, RECORD)
    assert not matches_any(patterns, {**RECORD, "eventName": "REMOVE"})
    assert matches_any(parse_filter_criteria(None), {"eventName": "REMOVE"})
