"""The shared layer: ``rekpipe_shared`` plus its pinned third-party packages, built without Docker."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stack.paths import ASSET_EXCLUDES, SHARED_LAYER_DIR

SHARED_PACKAGE = "rekpipe_shared"
WHEELHOUSE = Path(__file__).resolve().parent.parent / ".cache" / "layer-wheels"
"""Wheels for the layer's platform, fetched by ``make setup``; synth uses them offline."""
LAYER_PYTHON_VERSION = "3.14"
LAYER_PLATFORM = "manylinux2014_x86_64"
"""The layer holds binary wheels for this platform, so every function runs on x86_64."""


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundling:
    """Build a Python layer on this machine with pip, for Lambda's platform (no Docker).

    Parameters
    ----------
    source: Path
        The folder with ``requirements.txt`` and the package to ship.
    package: str
        The package folder copied next to the installed requirements.
    """

    def __init__(self, source: Path, package: str) -> None:
        self.source = source
        self.package = package

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        """Install the requirements and copy the package into ``<output_dir>/python``; True when done."""
        target = Path(output_dir) / "python"
        command = [
            sys.executable, "-m", "pip", "install",
            "-r", str(self.source / "requirements.txt"),
            "-t", str(target),
            "--platform", LAYER_PLATFORM,
            "--implementation", "cp",
            "--python-version", LAYER_PYTHON_VERSION,
            "--only-binary=:all:",
            "--upgrade",
            "--no-compile",  # bytecode of this machine's Python would be useless on 3.14
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ]
        if WHEELHOUSE.is_dir() and any(WHEELHOUSE.glob("*.whl")):
            # `make setup` downloads the layer's wheels once, so later synths need no network.
            command += ["--no-index", "--find-links", str(WHEELHOUSE)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # Returning False would make CDK try Docker, which hides pip's own message.
            raise RuntimeError(f"Building the shared layer failed: {' '.join(command)}\n{result.stderr.strip()}")
        shutil.copytree(self.source / self.package, target / self.package, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*ASSET_EXCLUDES))
        return True


class SharedLayer(Construct):
    """The Lambda layer every function uses.

    ``RemovalPolicy.RETAIN`` keeps old versions, so a function still pinned to one (during a
    rollback, or in another stack) never loses its code.

    Attributes
    ----------
    layer: lambda_.LayerVersion
    layer_version_arn: str
    """

    def __init__(self, scope: Construct, id_: str, *, source: Path = SHARED_LAYER_DIR,
                 package: str = SHARED_PACKAGE) -> None:
        super().__init__(scope, id_)
        runtime = lambda_.Runtime.PYTHON_3_14
        self.layer = lambda_.LayerVersion(
            self,
            "LayerVersion",
            code=lambda_.Code.from_asset(
                str(source),
                exclude=list(ASSET_EXCLUDES),
                bundling=cdk.BundlingOptions(
                    image=runtime.bundling_image,  # only used if local bundling declined, which it never does
                    local=PipLayerBundling(source, package),
                    command=["false"],
                ),
            ),
            compatible_runtimes=[runtime],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description=f"{package} and its pinned dependencies (Python {LAYER_PYTHON_VERSION}, x86_64)",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.layer_version_arn = self.layer.layer_version_arn
