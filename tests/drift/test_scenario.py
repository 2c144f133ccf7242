"""The drift acceptance scenario: zero false alarms, each planted change reported once."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource
from checker.options import DriftRunOptions
from checker.pipeline import drift as run_drift
from checker.report import RENDERERS
from tests.conftest import CASES

CASE = CASES / "drift"
REPO = CASE / "repo"
SECRET = "hunter2-s3cr3t-Value"
NEW_SECRET = "correct-horse-battery"
HASHER = SecretHasher(b"test-key")
# The scenario plants one hand change into a violation of Pod Security baseline
# (privileged); pinning that pack keeps the exact expectations below independent of the
# default packs, which grow. Best-practice violations have their own tests at the end.
BASELINE = ("pss-baseline",)


def line_of(rel: str, text: str, after: str = "") -> int:
    """1-based line of the first line containing ``text`` (after a line containing ``after``)."""
    started = not after
    for number, line in enumerate((REPO / rel).read_text().splitlines(), start=1):
        if not started and after in line:
            started = True
        if started and text in line:
            return number
    raise AssertionError(f"{text!r} not in {rel}")


def clean_items() -> list[dict[str, Any]]:
    data = yaml.safe_load((CASE / "live-clean.yaml").read_text())
    return list(data["items"])


def find(items: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(i for i in items if i["kind"] == kind and i["metadata"]["name"] == name)


def write_list(tmp_path: Path, items: list[dict[str, Any]]) -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def run(snapshot: Path, **kwargs: Any) -> Any:
    options = DriftRunOptions(paths=(REPO,), root=REPO, snapshot=snapshot, cluster="prod",
                              **kwargs)
    return run_drift(options, source=FileSource(snapshot, HASHER, "live.yaml"), hasher=HASHER)


def planted(tmp_path: Path) -> Path:
    items = copy.deepcopy(clean_items())
    web = find(items, "Deployment", "web")
    app = web["spec"]["template"]["spec"]["containers"][0]
    app["image"] = "ghcr.io/acme/web:1.4.3-hotfix"                          # 1 modified
    app["env"][1]["value"] = "debug"                                        # 2 LOG_LEVEL
    app["securityContext"] = {"privileged": True}                           # 3 + policy
    web["spec"]["template"]["spec"]["containers"].append(                   # 4 extra container
        {"name": "debug", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent"})
    svc = find(items, "Service", "web")
    svc["spec"]["ports"][0]["targetPort"] = 8081                            # 5 targetPort
    secret = find(items, "Secret", "db")
    import base64
    secret["data"]["password"] = base64.b64encode(NEW_SECRET.encode()).decode()  # 6 secret
    items.remove(find(items, "ConfigMap", "web-config"))                    # 7 missing
    items.append({"apiVersion": "apps/v1", "kind": "Deployment",            # 8 unmanaged
                  "metadata": {"name": "legacy", "namespace": "shop", "labels": {
                      "kustomize.toolkit.fluxcd.io/name": "apps",
                      "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
                  "spec": {"template": {"spec": {"containers": [
                      {"name": "c", "image": "busybox:1.36"}]}}}})
    find(items, "Deployment", "api")["spec"]["replicas"] = 9               # HPA: not drift
    items.append({"apiVersion": "v1", "kind": "ConfigMap",                  # not GitOps-owned
                  "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"}})
    return write_list(tmp_path, items)


def test_clean_snapshot_has_zero_drift() -> None:
    report = run(CASE / "live-clean.yaml")
    assert [f for f in report.findings if f.category == "drift"] == []
    assert report.drift_summary["managed"] == 8
    assert report.drift_summary["inSync"] == 8
    assert report.drift_summary["coverage"] == 100.0
    assert report.errors == ()


def test_each_planted_change_is_reported_once_at_its_line(tmp_path: Path) -> None:
    report = run(planted(tmp_path), packs=BASELINE)
    got = sorted((f.rule_id, f.location.path, f.location.line, f.resource)
                 for f in report.findings)
    expected = sorted([
        ("drift.modified", "apps/web.yaml", line_of("apps/web.yaml", "image: ghcr.io/acme/web"),
         "Deployment shop/web"),
        ("drift.modified", "apps/web.yaml", line_of("apps/web.yaml", "value: info"),
         "Deployment shop/web"),
        ("drift.modified", "apps/web.yaml", line_of("apps/web.yaml", "containers:"),
         "Deployment shop/web"),
        ("drift.modified", "apps/web.yaml", line_of("apps/web.yaml", "targetPort: 8080"),
         "Service shop/web"),
        ("drift.modified", "apps/config.yaml", line_of("apps/config.yaml", "password:"),
         "Secret shop/db"),
        ("drift.missing", "apps/config.yaml", 1, "ConfigMap shop/web-config"),
        ("drift.unmanaged", "clusters/prod/apps.yaml", 1, "Deployment shop/legacy"),
        # privileged is not declared: reported at the container, the deepest declared parent,
        # once, as a policy violation that carries the field's before and after
        ("drift.policy-violation", "apps/web.yaml", line_of("apps/web.yaml", "- name: app"),
         "Deployment shop/web"),
    ])
    assert got == expected
    fields = {f.details.get("field") for f in report.findings if f.rule_id == "drift.modified"}
    assert "spec.template.spec.containers[debug]" in fields
    assert "spec.ports[80/TCP].targetPort" in fields
    image = next(f for f in report.findings if f.details.get("field", "").endswith(".image"))
    assert image.details["before"] == "ghcr.io/acme/web:1.4.2"
    assert image.details["after"] == "ghcr.io/acme/web:1.4.3-hotfix"
    assert report.drift_summary["managed"] == 8
    assert report.drift_summary["inSync"] == 4  # namespace, api, hpa, flux kustomization
    policy = next(f for f in report.findings if f.rule_id == "drift.policy-violation")
    assert "changed by hand into a violation" in policy.message
    assert policy.details["policy"] == "pss-privileged"
    assert policy.details["field"] == (
        "spec.template.spec.containers[app].securityContext.privileged")
    assert (policy.details["before"], policy.details["after"]) == (False, True)
    assert policy.pack == "pss-baseline"


def test_secret_values_never_appear_in_any_format(tmp_path: Path) -> None:
    report = run(planted(tmp_path))
    import base64
    forbidden = [SECRET, NEW_SECRET, base64.b64encode(SECRET.encode()).decode(),
                 base64.b64encode(NEW_SECRET.encode()).decode()]
    secret_findings = [f for f in report.findings if f.resource == "Secret shop/db"]
    assert len(secret_findings) == 1
    assert "password" in secret_findings[0].message
    for name, render in RENDERERS.items():
        text = render(report)
        for value in forbidden:
            assert value not in text, f"{name} output leaks a Secret value"
    assert "Secret key 'password'" in RENDERERS["markdown"](report)


def test_unchanged_secret_value_compared_through_stringdata_and_data() -> None:
    report = run(CASE / "live-clean.yaml")
    assert not [f for f in report.findings if f.resource == "Secret shop/db"]


def test_ignore_file_silences_a_field(tmp_path: Path) -> None:
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text("ignore:\n  - kind: Deployment\n    name: web\n"
                      "    jsonPointers: [/spec/template/spec/containers/app/image,\n"
                      "                   /spec/template/spec/containers/0/env]\n"
                      "  - kind: ConfigMap\n    namespace: shop\n")
    report = run(planted(tmp_path), ignore_file=ignore)
    fields = [f.details.get("field") for f in report.findings if f.rule_id == "drift.modified"]
    assert not any(str(f).endswith(".image") for f in fields)
    assert not any("env" in str(f) for f in fields)
    assert not [f for f in report.findings if f.rule_id == "drift.missing"]
    assert any("targetPort" in str(f) for f in fields)


def test_cli_exit_codes_and_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_CHECKER_SECRET_KEY", "ci-key")
    runner = CliRunner()
    clean = runner.invoke(cli, ["drift", str(REPO), "--root", str(REPO), "--snapshot",
                                str(CASE / "live-clean.yaml"), "--cluster", "prod"])
    assert clean.exit_code == 0, clean.output
    sarif, junit, md = tmp_path / "d.sarif", tmp_path / "d.xml", tmp_path / "d.md"
    drifted = runner.invoke(cli, ["drift", str(REPO), "--root", str(REPO), "--snapshot",
                                  str(planted(tmp_path)), "--cluster", "prod", "--format",
                                  "json", "--sarif", str(sarif), "--junit", str(junit),
                                  "--markdown", str(md), "--pack", BASELINE[0]])
    assert drifted.exit_code == 1, drifted.output
    data = json.loads(drifted.stdout)
    assert {f["rule"] for f in data["findings"]} == {"drift.modified", "drift.missing",
                                                    "drift.unmanaged", "drift.policy-violation"}
    assert data["packs"] == list(BASELINE)
    runs = json.loads(sarif.read_text())["runs"]  # one run per cluster
    results = [r for run in runs for r in run["results"]]
    assert any(r["ruleId"] == "drift.missing" for r in results)
    from junitparser import JUnitXml
    suites = list(JUnitXml.fromfile(str(junit)))
    assert [s.name for s in suites] == ["prod"]
    assert {f["severity"] for f in data["findings"]} == {"error"}
    assert len(data["findings"]) == 8
    # JUnit has one failing test case per drifted resource, listing each of its fields
    drifted_resources = {f["resource"] for f in data["findings"]}
    assert suites[0].failures == len(drifted_resources) < 8
    cases = {c.name: c for c in suites[0] if not c.is_passed}
    assert set(cases) == {f"drift: {r}" for r in drifted_resources}
    for resource in drifted_resources:
        text = cases[f"drift: {resource}"].result[0].text or ""
        per_resource = [f for f in data["findings"] if f["resource"] == resource]
        assert all(f["message"] in text for f in per_resource)
    assert "### Drift" in md.read_text()
    both = runner.invoke(cli, ["drift", str(REPO), "--snapshot", "x", "--context", "c"])
    assert both.exit_code == 2
    neither = runner.invoke(cli, ["drift", str(REPO)])
    assert neither.exit_code == 2 and "--snapshot" in neither.output


def test_output_is_deterministic(tmp_path: Path) -> None:
    path = planted(tmp_path)
    first, second = run(path), run(path)
    for render in RENDERERS.values():
        assert render(first) == render(second)


def test_bad_ignore_file_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text("ignore:\n  - kind: Deployment\n    jsonPointer: /spec/replicas\n")
    result = CliRunner().invoke(cli, ["drift", str(REPO), "--root", str(REPO), "--snapshot",
                                      str(CASE / "live-clean.yaml"), "--ignore-file",
                                      str(ignore)])
    assert result.exit_code == 2
    assert "ignore.yaml:2: unknown key(s) in ignore entry: jsonPointer" in result.output


def test_markdown_drift_section_matches_golden_file(tmp_path: Path) -> None:
    from checker.report.markdown import drift_section

    report = run(planted(tmp_path), packs=BASELINE)
    golden = (CASE / "expected-drift-section.md").read_text(encoding="utf-8")
    assert "\n".join(drift_section(report)) == golden


def test_policy_violation_located_by_key_when_live_list_order_differs(tmp_path: Path) -> None:
    items = copy.deepcopy(clean_items())
    pod = find(items, "Deployment", "web")["spec"]["template"]["spec"]
    pod["containers"].insert(0, {"name": "debug", "image": "busybox:1.36",
                                 "securityContext": {"privileged": True}})
    pod["containers"][1]["securityContext"] = {"privileged": True}
    report = run(write_list(tmp_path, items), packs=BASELINE)
    got = sorted((f.rule_id, f.location.line, f.details.get("field", "")) for f in report.findings)
    container_line = line_of("apps/web.yaml", "- name: app")
    assert got == sorted([
        ("drift.modified", line_of("apps/web.yaml", "containers:"),
         "spec.template.spec.containers[debug]"),
        # the hand-added container violates too: reported at the list it was added to
        ("drift.policy-violation", line_of("apps/web.yaml", "containers:"), ""),
        ("drift.policy-violation", container_line,
         "spec.template.spec.containers[app].securityContext.privileged"),
    ])


def bp_violations(report: Any) -> list[tuple[str, int, str, str, str]]:
    """(resource, line, path, policy, message) of the bp-probes/bp-resources drift findings."""
    return sorted((f.resource, f.location.line, f.location.path, f.details["policy"], f.message)
                  for f in report.findings if f.rule_id == "drift.policy-violation"
                  and f.details["policy"] in ("bp-probes", "bp-resources"))


def test_hand_added_and_unmanaged_containers_violate_best_practice(tmp_path: Path) -> None:
    report = run(planted(tmp_path), packs=("best-practice",))
    missing = [("bp-probes", "must declare a livenessProbe"),
               ("bp-probes", "must declare a readinessProbe"),
               ("bp-resources", "must set resources.limits.memory"),
               ("bp-resources", "must set resources.requests.cpu"),
               ("bp-resources", "must set resources.requests.memory")]
    containers = line_of("apps/web.yaml", "containers:")
    expected = sorted(
        [("Deployment shop/web", containers, "apps/web.yaml", policy,
          f"changed by hand into a violation of {policy}: container debug {text}")
         for policy, text in missing]
        # the unmanaged object has no manifest: reported where drift.unmanaged is (its owner)
        + [("Deployment shop/legacy", 1, "clusters/prod/apps.yaml", policy,
            f"changed by hand into a violation of {policy}: container c {text}")
           for policy, text in missing])
    # container app lacks a livenessProbe in Git too: not a hand change, so not reported
    assert bp_violations(report) == expected
    unmanaged = next(f for f in report.findings if f.rule_id == "drift.unmanaged")
    assert unmanaged.location.path == "clusters/prod/apps.yaml"
    # the added container stays one drift.modified finding with its value; the violations
    # about its contents do not swallow it
    added = [f for f in report.findings if f.rule_id == "drift.modified"
             and f.details.get("field") == "spec.template.spec.containers[debug]"]
    assert len(added) == 1 and added[0].location.line == containers
    assert added[0].details["after"]["image"] == "busybox:1.36"
    assert all("field" not in f.details for f in report.findings
               if f.rule_id == "drift.policy-violation" and f.details["policy"] == "bp-probes")


def test_removed_or_changed_field_is_folded_into_its_violation(tmp_path: Path) -> None:
    items = copy.deepcopy(clean_items())
    app = find(items, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    del app["resources"]["limits"]["memory"]
    app["image"] = "ghcr.io/acme/web:latest"
    report = run(write_list(tmp_path, items), packs=("best-practice",))
    got = sorted((f.rule_id, f.location.line, f.details.get("policy", ""),
                  f.details.get("field", ""), f.details.get("before"), f.details.get("after"))
                 for f in report.findings if f.rule_id != "drift.policy-violation"
                 or f.details["policy"] in ("bp-resources", "image-tag"))
    prefix = "spec.template.spec.containers[app]"
    assert got == sorted([
        ("drift.policy-violation", line_of("apps/web.yaml", "memory: 512Mi"), "bp-resources",
         f"{prefix}.resources.limits.memory", "512Mi", None),
        ("drift.policy-violation", line_of("apps/web.yaml", "image: ghcr.io"), "image-tag",
         f"{prefix}.image", "ghcr.io/acme/web:1.4.2", "ghcr.io/acme/web:latest"),
    ])


def test_hand_changes_to_undeclared_fields_are_live_violations(tmp_path: Path) -> None:
    """Live objects are checked in full: fields Git does not declare are not drift, but a
    hand change to one that violates a trusted policy is a live violation."""
    items = copy.deepcopy(clean_items())
    web = find(items, "Deployment", "web")
    pod = web["spec"]["template"]["spec"]
    pod["securityContext"] = {"seccompProfile": {"type": "Unconfined"}, "runAsUser": 0}
    http = next(p for p in pod["containers"][0]["ports"] if p["name"] == "http")
    http["hostPort"] = 8080  # the live list is in another order than Git's
    pod["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
    report = run(write_list(tmp_path, items), packs=("pss-baseline", "pss-restricted"))
    drift = [f for f in report.findings if f.category == "drift"]
    assert drift and all(f.rule_id == "drift.policy-violation" for f in drift), drift
    assert all(f.resource == "Deployment shop/web" for f in drift)
    # allowPrivilegeEscalation: Git already violates restricted (it does not set it false),
    # so the live value is no hand change into a violation
    assert {f.details["policy"] for f in drift} == {
        "pss-host-ports", "pss-run-as-user", "pss-seccomp-baseline", "pss-seccomp-restricted"}
    ports = next(f for f in drift if f.details["policy"] == "pss-host-ports")
    assert (ports.location.path, ports.location.line) == (
        "apps/web.yaml", line_of("apps/web.yaml", "- name: http"))
    # the same hand changes without trusted policies: not drift (Git does not declare them)
    quiet = run(write_list(tmp_path, items), packs=("none",))
    assert [f for f in quiet.findings if f.category == "drift"] == []
    # and the clean cluster, every object evaluated: no violation from an API default
    clean = run(CASE / "live-clean.yaml", packs=("pss-baseline", "pss-restricted",
                                                 "best-practice"))
    assert [f for f in clean.findings if f.category == "drift"] == []
