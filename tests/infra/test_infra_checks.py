"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized template."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk

ACKNOWLEDGED = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
MIN_REASON = 60


def _findings(report):
    return [f"{v['ruleName']} at {c['constructPath']}"
            for plugin in (report or {}).get("pluginReports", [])
            for v in plugin.get("violations", []) for c in v.get("violatingConstructs", [])]


def _acknowledgements(stack):
    found = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACKNOWLEDGED:
                # Recorded as "Annotation::AwsSolutions-..." (an unqualified ID matches any plugin's finding)
                for rule, reason in entry.data.items():
                    namespace, sep, rest = rule.partition("::")
                    found.append((construct.node.path, rest if sep and "[" not in namespace else rule, reason))
    return found


def test_cdk_nag_no_unacknowledged_findings(synth):
    # GIVEN the app synthesized with cdk-nag's AwsSolutions checks
    # WHEN the validation report is read
    findings = _findings(synth.report)
    # THEN synth passed and nothing is left unacknowledged
    assert synth.report is not None
    assert not findings, "unacknowledged cdk-nag findings:\n" + "\n".join(findings)
    assert synth.validation_error is None


def test_cdk_nag_no_findings_with_every_operation(synth_with):
    # GIVEN every image and video analysis, with a collection and a project version, and expiring results
    arn = "arn:aws:rekognition:us-east-1:123456789012:project/shoes/version/v1/1700000000000"
    variant = synth_with(
        checks=True,
        image_operations="labels,faces,moderation,text,celebrities,ppe,face_search,custom_labels",
        video_operations="labels,faces,moderation,text,celebrities,segments,face_search",
        face_collection_id="staff", custom_labels_project_version_arn=arn, output_retention_days="30",
    )
    # WHEN / THEN the stack still passes cdk-nag with no new finding
    findings = _findings(variant.report)
    assert not findings, "unacknowledged cdk-nag findings:\n" + "\n".join(findings)
    assert variant.validation_error is None


def test_cdk_nag_acknowledgements_are_specific_and_reasoned(synth):
    # GIVEN every acknowledgement in the construct tree
    acknowledgements = _acknowledgements(synth.stack)
    assert acknowledgements
    for path, rule, reason in acknowledgements:
        # WHEN / THEN each names one finding (IAM5 always with its wildcard) and explains itself
        assert rule.startswith("AwsSolutions"), rule
        assert "IAM5" not in rule or "[" in rule, f"{path}: bare {rule}"
        assert len(reason) >= MIN_REASON, f"{path} {rule}: reason too short"
    # AND no Lambda runtime finding is acknowledged: Python 3.14 is the newest runtime
    assert not [a for a in acknowledgements if "-L1" in a[1]]


def test_template_passes_cfn_lint(synth, tmp_path: Path):
    # GIVEN the template in a file (the ASL is inline, so cfn-lint checks it too)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(synth.json))
    linter = Path(sys.executable).with_name("cfn-lint")
    command = str(linter) if linter.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed (requirements-dev.txt)"
    # WHEN cfn-lint runs, ignoring W3005 (CDK's redundant DependsOn). The file comes first:
    # `-i` takes several values and would swallow a path written after it.
    result = subprocess.run([command, str(path), "-i", "W3005"], capture_output=True, text=True, check=False)
    # THEN it reports nothing
    assert result.returncode == 0, result.stdout + result.stderr
