"""The shared layer and its Docker-free bundling."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from stack.layer import LAYER_PLATFORM, LAYER_PYTHON_VERSION, PipLayerBundling

from .template_queries import resources

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_layer_retained_python314_x86(synth):
    # GIVEN / WHEN / THEN the layer keeps old versions, for Python 3.14 on x86_64
    synth.template.has_resource("AWS::Lambda::LayerVersion", {
        "DeletionPolicy": "Retain",
        "Properties": {"CompatibleRuntimes": ["python3.14"], "CompatibleArchitectures": ["x86_64"]},
    })
    assert len(resources(synth.json, "AWS::Lambda::LayerVersion")) == 1
    assert synth.stack.layer.layer_version_arn is not None


def test_layer_bundling_pip_installs_for_lambda_and_copies_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # GIVEN a layer source folder and a pip that only records its command
    source = tmp_path / "shared"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("")
    (source / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    (source / "requirements.txt").write_text("example==1.0\n")
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    out = tmp_path / "out"
    # WHEN the bundler runs
    done = PipLayerBundling(source, "pkg").try_bundle(str(out), None)
    # THEN pip targets <out>/python for Lambda's platform, binary wheels only, and the package is copied
    assert done is True
    (command,) = calls
    for expected in (["-r", str(source / "requirements.txt")], ["-t", str(out / "python")],
                     ["--platform", LAYER_PLATFORM], ["--implementation", "cp"],
                     ["--python-version", LAYER_PYTHON_VERSION]):
        index = command.index(expected[0])
        assert command[index:index + 2] == expected
    assert "--only-binary=:all:" in command
    assert (out / "python" / "pkg" / "__init__.py").is_file()
    assert not (out / "python" / "pkg" / "__pycache__").exists()
