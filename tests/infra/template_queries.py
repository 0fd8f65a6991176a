"""Read a synthesized template by meaning (function name, role, queue), never by hashed logical ID."""

from __future__ import annotations

from typing import Any

from rekpipe_shared.schema import SERVICE_NAME_ENV


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """Resources of one CloudFormation type, by logical ID."""
    return {lid: res for lid, res in template["Resources"].items() if res["Type"] == type_}


def pipeline_functions(template: dict[str, Any]) -> dict[str, str]:
    """Pipeline function name (``POWERTOOLS_SERVICE_NAME``) -> logical ID."""
    found = {}
    for lid, res in resources(template, "AWS::Lambda::Function").items():
        variables = res["Properties"].get("Environment", {}).get("Variables", {})
        if SERVICE_NAME_ENV in variables:
            found[variables[SERVICE_NAME_ENV]] = lid
    return found


def function_props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][pipeline_functions(template)[name]]["Properties"]


def role_of_function(template: dict[str, Any], name: str) -> str:
    return function_props(template, name)["Role"]["Fn::GetAtt"][0]


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement of every AWS::IAM::Policy attached to one role."""
    statements = []
    for res in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in res["Properties"].get("Roles", []):
            statements.extend(res["Properties"]["PolicyDocument"]["Statement"])
    return statements


def function_statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return role_statements(template, role_of_function(template, name))


def actions_of(statements: list[dict[str, Any]], prefix: str = "") -> set[str]:
    """Allowed actions (optionally of one service prefix such as ``rekognition:``)."""
    return {
        action
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if action.startswith(prefix)
    }


def resources_for(statements: list[dict[str, Any]], action: str) -> list[Any]:
    """The resources allowed for one action."""
    return [
        resource
        for statement in statements
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]


def getatt_id(value: Any) -> str | None:
    """The logical ID behind ``{"Fn::GetAtt": [id, attr]}`` or ``{"Ref": id}``."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        if "Ref" in value:
            return value["Ref"]
    return None


def mentions(value: Any, text: str) -> bool:
    """Whether a (possibly intrinsic) value contains ``text`` anywhere."""
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(mentions(k, text) or mentions(v, text) for k, v in value.items())
    if isinstance(value, list):
        return any(mentions(v, text) for v in value)
    return False


def queue_consumers(template: dict[str, Any]) -> dict[str, str]:
    """SQS queue logical ID -> pipeline function name of its event source mapping."""
    by_id = {lid: name for name, lid in pipeline_functions(template).items()}
    consumers = {}
    for res in resources(template, "AWS::Lambda::EventSourceMapping").values():
        props = res["Properties"]
        queue_id = getatt_id(props["EventSourceArn"])
        if queue_id in resources(template, "AWS::SQS::Queue"):
            consumers[queue_id] = by_id[getatt_id(props["FunctionName"])]
    return consumers
