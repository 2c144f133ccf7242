"""Namespace exemptions: visible in every report, configurable per cluster and per policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.config import load_config
from checker.errors import ConfigError
from checker.options import ScanOptions
from checker.overview import compliance
from checker.overview.render_compliance import render_markdown, render_text
from checker.pipeline import scan
from checker.report import json_format, markdown

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      containers:
      - name: agent
        image: registry.example.com/agent:1.0
        securityContext: {privileged: true}
"""


def repo(tmp_path: Path, config: str | None = None) -> Path:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "agent.yaml").write_text(DAEMONSET, encoding="utf-8")
    if config is not None:
        (tmp_path / ".gitops-checker.yaml").write_text(config, encoding="utf-8")
    return tmp_path


def run(root: Path) -> tuple[set[str], dict[str, tuple[tuple[str, ...], str, int]]]:
    report = scan(ScanOptions(paths=(root / "deploy",), root=root, packs=("pss-baseline",)))
    rules = {f.rule_id for f in report.findings if f.category == "policy"}
    return rules, {e.policy: (e.namespaces, e.source, e.skipped) for e in report.exemptions}


def test_pack_default_exemption_is_reported_with_what_it_skipped(tmp_path: Path) -> None:
    rules, exempt = run(repo(tmp_path))
    assert "pss-privileged" not in rules and "pss-host-namespaces" not in rules
    assert exempt["pss-privileged"] == (("kube-system",), "pack pss-baseline", 1)
    assert len(exempt) == 12  # every pss-baseline policy skips kube-system by default


def test_defaults_empty_list_checks_kube_system(tmp_path: Path) -> None:
    rules, exempt = run(repo(tmp_path, "defaults:\n  excludedNamespaces: []\n"))
    assert {"pss-privileged", "pss-host-namespaces"} <= rules
    assert exempt == {}


def test_per_policy_override_wins_over_defaults(tmp_path: Path) -> None:
    root = repo(tmp_path, "defaults:\n  excludedNamespaces: []\n  overrides:\n"
                          "    pss-host-namespaces:\n      excludedNamespaces: [kube-*]\n")
    rules, exempt = run(root)
    assert "pss-privileged" in rules and "pss-host-namespaces" not in rules
    assert exempt == {"pss-host-namespaces": (("kube-*",), ".gitops-checker.yaml:4", 1)}


def test_per_cluster_list_replaces_the_defaults(tmp_path: Path) -> None:
    root = repo(tmp_path, "defaults:\n  excludedNamespaces: []\nclusters:\n"
                          "- name: prod\n  paths: [deploy]\n  excludedNamespaces: [monitoring]\n"
                          "- name: dev\n  paths: [deploy]\n")
    report = scan(ScanOptions(paths=(), root=root, packs=("pss-baseline",)))
    privileged = {f.cluster for f in report.findings if f.rule_id == "pss-privileged"}
    assert privileged == {"prod", "dev"}  # monitoring exempt in prod: kube-system checked
    prod = {e.policy: e for e in report.exemptions if e.cluster == "prod"}
    assert prod["pss-privileged"].namespaces == ("monitoring",)
    assert prod["pss-privileged"].skipped == 0
    assert prod["pss-privileged"].source == ".gitops-checker.yaml:6"
    assert not [e for e in report.exemptions if e.cluster == "dev"]


def test_unknown_policy_id_is_an_invalid_config(tmp_path: Path) -> None:
    root = repo(tmp_path, "defaults:\n  overrides:\n    pss-nope:\n"
                          "      excludedNamespaces: []\n")
    with pytest.raises(ConfigError, match=r"\.gitops-checker\.yaml:3: invalid config: unknown "
                                          r"policy id 'pss-nope'"):
        run(root)


def test_namespace_that_is_no_name_is_an_invalid_config(tmp_path: Path) -> None:
    root = repo(tmp_path, "defaults:\n  excludedNamespaces: ['kube system']\n")
    with pytest.raises(ConfigError, match=r"\.gitops-checker\.yaml:2: invalid config at "
                                          r"defaults\.excludedNamespaces\.0"):
        load_config(root)


def test_json_and_markdown_state_the_exempt_namespaces(tmp_path: Path) -> None:
    root = repo(tmp_path)
    report = scan(ScanOptions(paths=(root / "deploy",), root=root, packs=("pss-baseline",)))
    data = json.loads(json_format.render(report))
    policies = sorted(e.policy for e in report.exemptions)
    assert data["exemptions"] == [{
        "cluster": "", "namespaces": ["kube-system"], "source": "pack pss-baseline",
        "skipped": 1, "policies": policies,
        "skippedBy": dict.fromkeys(policies, 1)}]  # per policy, so a merge can add them up
    text = markdown.render(report)
    assert "### Exempt namespaces" in text
    assert "| `kube-system` | 12: `pss-apparmor`," in text
    assert "| 1 | pack pss-baseline |" in text


def test_compliance_states_the_exempt_namespaces(tmp_path: Path) -> None:
    root = repo(tmp_path, "clusters:\n- name: prod\n  paths: [deploy]\n  packs: [pss-baseline]\n"
                          "  overrides:\n    pss-privileged:\n      excludedNamespaces: []\n")
    config = load_config(root)
    matrix = compliance.run(root, config, {}, ScanOptions(paths=(), root=root))
    groups = compliance.as_json(matrix)["exemptions"]
    assert [(g["cluster"], g["namespaces"], len(g["policies"])) for g in groups] == [
        ("prod", ["kube-system"], 11)]
    assert "pss-privileged" not in groups[0]["policies"]
    assert "## Exempt namespaces" in render_markdown(matrix)
    assert "prod: namespaces kube-system exempt from 11 policies (1 objects skipped" in (
        render_text(matrix))
