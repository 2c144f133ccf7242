"""Tekton Pipelines: task specs are checked as the pods a TaskRun becomes; what a resolver or a
bundle fetches at run time is reported not checked."""

from __future__ import annotations

from pathlib import Path

from checker.options import ScanOptions
from checker.pipeline import scan
from checker.podspec import unchecked_tekton_fields

PIPELINE_RUN = """\
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: release, namespace: ci}
spec:
  taskRunTemplate:
    podTemplate:
      hostNetwork: true
  pipelineSpec:
    tasks:
    - name: build
      taskSpec:
        stepTemplate:
          securityContext: {privileged: true}
        steps:
        - name: compile
          image: registry.example.com/builder:1.0.0
        - name: fetch
          ref:
            resolver: git
            params: [{name: url, value: https://example.com/steps.git}]
    - name: deploy
      taskRef:
        resolver: hub
        params: [{name: name, value: kubectl}]
"""


def test_pipelinerun_pods_are_checked_and_fetched_parts_reported(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(PIPELINE_RUN, encoding="utf-8")
    report = scan(ScanOptions(paths=(tmp_path,), root=tmp_path, packs=("pss-baseline",)))
    got = {(f.rule_id, f.location.line) for f in report.findings}
    assert ("pss-privileged", 15) in got       # the step, privileged through stepTemplate
    assert ("pss-host-namespaces", 11) in got  # the run's podTemplate, at the task spec
    gaps = sorted((f.location.line, f.message) for f in report.findings
                  if f.rule_id == "input.not-checked")
    assert [line for line, _ in gaps] == [18, 22]  # the step's ref, the task's taskRef
    assert "fetched by a resolver" in gaps[0][1] and "not policy-checked" in gaps[1][1]


def test_only_fetched_references_are_gaps() -> None:
    body = {"spec": {"tasks": [
        {"name": "a", "taskRef": {"name": "git-clone"}},           # an object of its own
        {"name": "b", "taskRef": {"bundle": "registry.example.com/tasks:1"}},
        {"name": "c", "taskSpec": {"steps": [{"ref": {"name": "kaniko"}}]}}]}}
    assert unchecked_tekton_fields("Pipeline", body) == [
        (("spec", "tasks", 1, "taskRef"), "a task fetched by a resolver or bundle")]
    assert unchecked_tekton_fields("Task", {"spec": []}) == []
    assert unchecked_tekton_fields("Condition", body) == []
