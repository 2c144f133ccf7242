"""ObjectRef: every join between stages is on the typed object identity, not a display string."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker import accept
from checker.action import outputs as action
from checker.cli import cli
from checker.model import Finding, ObjectRef, Report, Rule, Severity, SourceLocation
from checker.report.common import fingerprint

Write = Callable[[str, str], Path]

DIGEST = "sha256:" + "0" * 64
KRUISE = f"""
apiVersion: apps.kruise.io/v1beta1
kind: StatefulSet
metadata:
  name: db
  namespace: prod
  annotations:
    gitops-checker.io/accept.pss-privileged: "the kruise db is reviewed"
spec:
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
        - name: db
          image: registry.example/db@{DIGEST}
"""
APPS = f"""
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: prod
spec:
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
        - name: db
          image: registry.example/db@{DIGEST}
          securityContext: {{privileged: true}}
"""


@pytest.mark.parametrize("order", ["apps-first", "kruise-first"])
def test_an_annotation_on_a_kruise_statefulset_does_not_accept_the_apps_one(
        write: Write, tmp_path: Path, runner: CliRunner, order: str) -> None:
    """The regression of issue 15: ``StatefulSet prod/db`` names two objects here. The
    acceptance annotation of the apps.kruise.io one must not accept the privileged apps/v1
    one (it was accepted, exit 0, when the apps one came first in the file)."""
    docs = [APPS, KRUISE] if order == "apps-first" else [KRUISE, APPS]
    write("sts.yaml", "---\n".join(docs))
    result = runner.invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path), "--pack",
                                 "pss-baseline", "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    findings = data["findings"]
    privileged = [f for f in findings if f["rule"] == "pss-privileged"]
    assert len(privileged) == 1 and data["accepted"] == [], data["accepted"]
    # the annotation accepted nothing, and says so
    assert [f["rule"] for f in findings if f["rule"].startswith("acceptance.")] == [
        "acceptance.stale"]


def test_the_annotated_object_itself_is_still_accepted(
        write: Write, tmp_path: Path, runner: CliRunner) -> None:
    """Control: the same annotation on the privileged object itself accepts its finding."""
    annotated = APPS.replace("  namespace: prod\n", "  namespace: prod\n  annotations:\n"
                             "    gitops-checker.io/accept.pss-privileged: reviewed\n", 1)
    write("sts.yaml", "---\n".join([annotated, KRUISE.replace("accept.pss-privileged",
                                                               "accept-owner")]))
    result = runner.invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path), "--pack",
                                 "pss-baseline"])
    assert result.exit_code == 0, result.output
    assert "1 accepted" in result.stdout


def test_version_is_not_identity_but_group_is() -> None:
    v1 = ObjectRef.of("apps/v1", "Deployment", "prod", "web", cluster="c")
    beta = ObjectRef.of("apps/v1beta2", "Deployment", "prod", "web", cluster="c")
    kruise = ObjectRef.of("apps.kruise.io/v1beta1", "Deployment", "prod", "web", cluster="c")
    assert v1 == beta and hash(v1) == hash(beta)  # one object, served at two versions
    assert v1 != kruise and v1 != v1.in_cluster("other")
    assert v1.display == kruise.display == "Deployment prod/web"  # display is not identity
    assert (v1.group, v1.version, v1.api_version) == ("apps", "v1", "apps/v1")
    core = ObjectRef.of("v1", "Namespace", "", "prod")
    assert (core.group, core.api_version, core.display) == ("", "v1", "Namespace prod")


def _finding(ref: ObjectRef | None, rule: str = "pss-privileged") -> Finding:
    return Finding(rule_id=rule, category="policy", severity=Severity.ERROR, message="m",
                   location=SourceLocation("a.yaml", 3), resource=ref.display if ref else "",
                   cluster=ref.cluster if ref else "", ref=ref)


def test_fingerprints_of_two_objects_with_one_display_string_differ() -> None:
    apps = ObjectRef.of("apps/v1", "StatefulSet", "prod", "db")
    kruise = ObjectRef.of("apps.kruise.io/v1beta1", "StatefulSet", "prod", "db")
    assert fingerprint(_finding(apps)) != fingerprint(_finding(kruise))
    # a version upgrade of the manifest keeps the alert
    moved = ObjectRef.of("apps/v1beta2", "StatefulSet", "prod", "db")
    assert fingerprint(_finding(apps)) == fingerprint(_finding(moved))


def test_the_actions_secret_redaction_follows_the_object_kind() -> None:
    """A finding on a Secret is annotated with the rule title only, whatever its display."""
    secret = ObjectRef.of("v1", "Secret", "prod", "token")
    report = Report(findings=(), rules={"r": Rule("r", "Title", Severity.ERROR)},
                    resources_checked=1, files_checked=1)
    leaky = Finding(rule_id="r", category="drift", severity=Severity.ERROR,
                    message="value s3cr3t differs", location=SourceLocation("a.yaml", 1),
                    resource="odd display", ref=secret)
    line = action.annotation(leaky, report, "")
    assert "s3cr3t" not in line and line.endswith("::Title (odd display)")
    plain = Finding(**{**leaky.__dict__, "ref": ObjectRef.of("v1", "ConfigMap", "prod", "t"),
                       "resource": "Secret prod/token"})
    assert "s3cr3t" in action.annotation(plain, report, "")  # a display string decides nothing


def test_a_finding_about_a_file_is_never_tied_to_an_object() -> None:
    """No ``ref``: no resource can be found for it, whatever its display string says."""
    import datetime as dt

    from checker.load.objects import make_resource

    res = make_resource({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "ns", "annotations": {
            "gitops-checker.io/accept.pss-privileged": "ok"}}}, SourceLocation("p.yaml", 1), {})
    tied = _finding(res.ref)
    loose = Finding(**{**tied.__dict__, "ref": None})
    out = accept.apply([tied, loose], [res], [], dt.date(2026, 1, 1))
    assert [f.suppression is not None for f in out.findings] == [True, False]


def test_action_log_is_unchanged_by_the_ref() -> None:
    """The display string still reads the same in every output."""
    ref = ObjectRef.of("apps/v1", "Deployment", "prod", "web")
    report = Report(findings=(_finding(ref),), rules={}, resources_checked=1, files_checked=1)
    out = io.StringIO()
    for line in action.annotation_commands(report):
        out.write(line)
    assert "(Deployment prod/web)" in out.getvalue()


def test_every_finding_about_an_object_carries_its_ref() -> None:
    """Over the golden scenarios (scan: basic, multi-cluster, CEL, admission; drift): a policy
    or drift finding that names an object can be joined to it. Exempt: findings that name a
    kind (a kind not in the snapshot) or a Gatekeeper mutator or expansion template."""
    from checker import pipeline
    from checker.options import DriftRunOptions, ScanOptions
    from tests.report.test_golden import ADMISSION, BASIC, CEL, DRIFT, EXAMPLE

    runs = [
        pipeline.scan(ScanOptions(paths=(BASIC / "manifests",), root=BASIC, packs=("none",),
                                  policies=(BASIC / "policies",))),
        pipeline.scan(ScanOptions(paths=(EXAMPLE,), root=EXAMPLE)),
        pipeline.scan(ScanOptions(paths=(CEL / "apps",), root=CEL, packs=("none",),
                                  policies=(CEL / "policies",))),
        pipeline.scan(ScanOptions(paths=(ADMISSION / "manifests",), root=ADMISSION,
                                  packs=("none",), policies=(ADMISSION / "policies",))),
        pipeline.drift(DriftRunOptions(paths=(DRIFT / "repo",), root=DRIFT / "repo",
                                       snapshot=DRIFT / "live-drifted.yaml", cluster="prod",
                                       packs=("pss-baseline",))),
    ]
    exempt = ("drift.unreadable",)
    seen = 0
    for report in runs:
        for f in report.findings:
            if f.category in ("policy", "drift") and f.resource and not f.rule_id.startswith(
                    exempt):
                seen += 1
                assert f.ref is not None, f
                assert f.ref.display == f.resource and f.ref.cluster == f.cluster, f
    assert seen > 20
