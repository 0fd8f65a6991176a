"""Which environment variables a function's code can read: the schema's ``*_ENV`` names its handler refers to.

The handler's ``app.py`` and every layer module it imports (transitively) are parsed; a reference to a schema
``*_ENV`` constant, or the variable's name as a string literal, counts as a read. This over-approximates (a module
imported for one function may refer to a variable another function of it reads), which errs toward giving the
variable, never toward a ``KeyError`` in AWS.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from rekpipe_shared import schema
from stack.paths import function_dir

LAYER = Path(schema.__file__).resolve().parents[1]
SCHEMA_ENV = {name: value for name, value in vars(schema).items() if name.endswith("_ENV")}
SKIPPED = {schema.SERVICE_NAME_ENV}


def _module_file(module: str) -> Path | None:
    base = LAYER.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST) -> set[Path]:
    found: set[Path] = set()
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rekpipe_shared"):
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names if alias.name.startswith("rekpipe_shared")]
        for module in modules:
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # a package's __init__ runs too
                path = _module_file(".".join(parts[:depth]))
                if path is not None:
                    found.add(path)
    return found


@cache
def env_names_read_by(function: str) -> set[str]:
    """The variable names ``lambdas/<function>`` can read (see the module docstring)."""
    seen: set[Path] = set()
    todo = [function_dir(function) / "app.py"]
    names: set[str] = set()
    values = set(SCHEMA_ENV.values())
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        todo.extend(_imports(tree))
        if path.name == "schema.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in SCHEMA_ENV:
                names.add(SCHEMA_ENV[node.id])
            elif isinstance(node, ast.Attribute) and node.attr in SCHEMA_ENV:
                names.add(SCHEMA_ENV[node.attr])
            elif isinstance(node, ast.Constant) and node.value in values:
                names.add(str(node.value))
    return names - SKIPPED
