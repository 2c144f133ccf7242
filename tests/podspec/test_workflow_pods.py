"""Argo Workflows: templates are checked as the pods the controller creates; what the pod
policies cannot see (podSpecPatch, templateDefaults) is reported not checked."""

from __future__ import annotations

from pathlib import Path

from checker.options import ScanOptions
from checker.pipeline import scan

WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly, namespace: ci}
spec:
  schedule: "0 2 * * *"
  workflowSpec:
    entrypoint: main
    hostNetwork: true
    templates:
    - name: main
      container:
        image: registry.example.com/report:1.0.0
        securityContext: {privileged: true}
      podSpecPatch: '{"hostPID": true}'
"""


def test_cronworkflow_pods_are_checked_and_patches_reported(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
    report = scan(ScanOptions(paths=(tmp_path,), root=tmp_path, packs=("pss-baseline",)))
    got = {(f.rule_id, f.location.line) for f in report.findings}
    assert ("pss-privileged", 13) in got       # the container's securityContext.privileged
    assert ("pss-host-namespaces", 10) in got  # the workflow's hostNetwork, at the template
    assert ("input.not-checked", 14) in got    # the template's podSpecPatch
    [gap] = [f for f in report.findings if f.rule_id == "input.not-checked"]
    assert "podSpecPatch" in gap.message and gap.resource == "CronWorkflow ci/nightly"
