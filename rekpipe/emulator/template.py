"""Reading a synthesized CloudFormation template: intrinsic functions and resource attributes.

The embedded runtime deploys the template ``cdk synth`` produces. Where moto cannot take a
resource (event source mappings that must batch, subscriptions it skips, state machines its
CloudFormation hides from the execution engine), the runtime applies it itself from the
template's own properties, resolved against the physical resources moto created.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class UnresolvableError(ValueError):
    """A template value uses an intrinsic function or reference the runtime cannot resolve."""


class Resolver:
    """Resolves intrinsic functions against physical resources.

    Parameters
    ----------
    refs: dict[str, str]
        ``Ref`` value of each logical id (and pseudo parameters such as ``AWS::Region``).
    get_att: Callable[[str, str], Any]
        Returns ``Fn::GetAtt`` of (logical id, attribute).
    """

    def __init__(self, refs: dict[str, str], get_att: Callable[[str, str], Any]) -> None:
        self.refs = refs
        self.get_att = get_att

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                if argument not in self.refs:
                    raise UnresolvableError(f"Ref to unknown {argument!r}")
                return self.refs[argument]
            if name == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if name == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if name == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if name.startswith("Fn::"):
                raise UnresolvableError(f"{name} is not supported")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            if name in self.refs:
                return str(self.refs[name])
            raise UnresolvableError(f"Fn::Sub variable {name!r} is unknown")

        return _SUB_VARIABLE.sub(replace, text)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for one resource type."""
    return {lid: r for lid, r in template.get("Resources", {}).items() if r.get("Type") == resource_type}


def substitute_definition(definition: str, substitutions: dict[str, Any]) -> str:
    """Apply DefinitionSubstitutions the way Step Functions does: ``${Name}`` -> value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise UnresolvableError(f"the definition uses ${{{name}}} but no substitution gives it")
        return str(substitutions[name])

    return _SUB_VARIABLE.sub(replace, definition)
