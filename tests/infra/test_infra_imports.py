"""The stack reads the layer's schema, never its AWS-facing modules.

A synth that imports ``rekpipe_shared.tasks`` for a key name also imports boto3 and every client
setting of the runtime; the keys, indexes, formats and limits live in ``rekpipe_shared.schema`` so the
stack and the handlers share one definition without that coupling.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_LAYER_MODULES = {
    "rekpipe_shared",
    "rekpipe_shared.schema",
    "rekpipe_shared.settings",
    "rekpipe_shared.operations",
    "rekpipe_shared.routing",
    "rekpipe_shared.exceptions",
}
"""The schema plus the pure parts the stack is built from: typed settings, the operation catalogue (the IAM
actions and the ASL's operations) and the stream's filter patterns."""

PROBE = """
import json, sys
import cdk_app  # noqa: F401  builds nothing at import; imports the stack modules
print(json.dumps(sorted(name for name in sys.modules if name.startswith(("rekpipe_shared", "boto3", "botocore")))))
"""


def test_building_the_app_loads_only_the_pure_layer_modules_and_no_boto3() -> None:
    # GIVEN a fresh interpreter with the layer on its path, as `cdk synth` runs
    env_path = f"{ROOT}:{ROOT / 'lambdas' / 'shared'}"
    # WHEN it imports the app
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    # THEN no boto3 or botocore is loaded, and no layer module beyond the schema and the pure parts
    assert not {name for name in loaded if name.startswith(("boto3", "botocore"))}
    assert {name for name in loaded if name.startswith("rekpipe_shared")} <= PURE_LAYER_MODULES
    assert "rekpipe_shared.schema" in loaded


def test_pure_layer_modules_import_no_boto3() -> None:
    # GIVEN each pure module alone WHEN imported THEN boto3 stays unloaded (the stack test above would not see a
    # module that only some stack file imports lazily)
    for module in sorted(PURE_LAYER_MODULES):
        probe = f"import sys, {module}; print('boto3' in sys.modules or 'botocore' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                             env={"PYTHONPATH": str(ROOT / "lambdas" / "shared"), "PATH": "/usr/bin:/bin"}).stdout
        assert out.strip() == "False", module
