"""Compliance matrix: packs and policies by cluster, gaps, live constraints, acceptances."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.policy.packs import load_catalog, packs_dir
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "multi-cluster"
TEMPLATE = (EXAMPLE / "policies" / "required-owner-template.yaml").read_text(encoding="utf-8")

CONFIG = """\
version: 1
clusters:
  - name: dev
    environment: development
    paths: [apps]
    packs: [best-practice]
    policies: [policies/dev]
  - name: prod
    environment: production
    paths: [apps]
    policies: [policies/prod]
"""
CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: workloads-must-have-owner
spec:
  enforcementAction: {action}
  match:
    kinds:
      - apiGroups: [apps]
        kinds: [Deployment]
  parameters:
    labels: [owner]
"""
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:latest
          securityContext: {privileged: true}
"""
LIVE = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: GcImageTag
metadata: {name: image-tag}
spec: {enforcementAction: warn}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: workloads-must-have-owner}
spec: {}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAllowedRepos
metadata: {name: hand-applied}
spec: {enforcementAction: dryrun}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"""


# The matrix has a row for every policy of every built-in pack. The tests on a test-owned tree
# read a fixed catalog of two packs with one policy each, so that their exact tables do not
# change when the real packs grow; test_multi_cluster_example reads the real catalog.
MINI_CATALOG = {"best-practice": ["image-tag"], "pss-baseline": ["pss-privileged"]}


@pytest.fixture
def mini_catalog(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point GITOPS_CHECKER_PACKS at a copy of MINI_CATALOG's policies (real templates)."""
    real = packs_dir()
    mini = tmp_path_factory.mktemp("packs")
    shutil.copytree(real / "lib", mini / "lib")
    for pack, ids in MINI_CATALOG.items():
        shutil.copytree(real / pack, mini / pack)
        data = yaml.safe_load((real / pack / "pack.yaml").read_text(encoding="utf-8"))
        data["policies"] = [e for e in data["policies"] if e.get("id") in ids]
        data.pop("include", None)
        assert [e["id"] for e in data["policies"]] == ids
        (mini / pack / "pack.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("GITOPS_CHECKER_PACKS", str(mini))
    # The mini catalog has no pss-restricted: its default selection is its two packs.
    monkeypatch.setattr("checker.policy.select.DEFAULT_PACKS", tuple(MINI_CATALOG))


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def tree(root: Path) -> Path:
    write(root, ".gitops-checker.yaml", CONFIG)
    write(root, "policies/dev/template.yaml", TEMPLATE)
    write(root, "policies/dev/constraint.yaml", CONSTRAINT.format(action="dryrun"))
    write(root, "policies/prod/template.yaml", TEMPLATE)
    write(root, "policies/prod/constraint.yaml", CONSTRAINT.format(action="deny"))
    write(root, "apps/deploy.yaml", DEPLOY)
    write(root, "live/prod.yaml", LIVE)
    return root


def compliance(*args: str) -> Any:
    return CliRunner().invoke(cli, ["compliance", *args])


def rows(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["pack"], r["policy"]): r for r in data["rows"]}


@pytest.mark.usefixtures("mini_catalog")
def test_gaps_between_clusters(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = compliance("--root", str(root), "--format", "json", "--today", "2026-01-01")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["clusters"] == [{"name": "dev", "environment": "development"},
                                {"name": "prod", "environment": "production"}]
    table = rows(data)
    assert set(table) == {("best-practice", "image-tag"), ("pss-baseline", "pss-privileged"),
                          ("repository", "K8sRequiredLabels/workloads-must-have-owner")}
    image_tag = table[("best-practice", "image-tag")]
    assert image_tag["cells"] == {
        "dev": {"status": "deny", "violations": 1, "accepted": 0, "live": ""},
        "prod": {"status": "deny", "violations": 1, "accepted": 0, "live": ""}}
    assert image_tag["flags"] == []
    assert image_tag["standard"] == "Best practice"
    privileged = table[("pss-baseline", "pss-privileged")]
    assert privileged["cells"]["dev"] == {"status": "missing", "violations": 0, "accepted": 0,
                                          "live": ""}
    assert privileged["cells"]["prod"]["violations"] == 1
    assert privileged["flags"] == ["missing in dev"]
    owner = table[("repository", "K8sRequiredLabels/workloads-must-have-owner")]
    assert owner["cells"]["dev"]["status"] == "dryrun"
    assert owner["cells"]["prod"] == {"status": "deny", "violations": 1, "accepted": 0,
                                      "live": ""}
    assert owner["flags"] == ["dryrun only in dev", "enforcement differs between clusters"]
    assert owner["constraint"] == "K8sRequiredLabels/workloads-must-have-owner"
    assert data["totals"] == {
        "dev": {"active": 1, "warn": 0, "dryrun": 1, "missing": 1, "violations": 1 +
                owner["cells"]["dev"]["violations"], "accepted": 0},
        "prod": {"active": 3, "warn": 0, "dryrun": 0, "missing": 0, "violations": 3,
                 "accepted": 0}}
    assert data["gaps"] == 2
    assert data["packs"] == [
        {"pack": "best-practice", "standard": "Best practice", "policies": 1, "cells": {
            "dev": {"enforcing": 1, "dryrun": 0, "missing": 0, "violations": 1, "accepted": 0,
                    "status": "complete"},
            "prod": {"enforcing": 1, "dryrun": 0, "missing": 0, "violations": 1,
                     "accepted": 0, "status": "complete"}}},
        {"pack": "pss-baseline", "standard": "Pod Security Standards", "policies": 1,
         "cells": {
             "dev": {"enforcing": 0, "dryrun": 0, "missing": 1, "violations": 0,
                     "accepted": 0, "status": "missing"},
             "prod": {"enforcing": 1, "dryrun": 0, "missing": 0, "violations": 1,
                      "accepted": 0, "status": "complete"}}}]
    assert data["errors"] == [] and data["snapshots"] == []
    strict = compliance("--root", str(root), "--strict", "--today", "2026-01-01")
    assert strict.exit_code == 1


@pytest.mark.usefixtures("mini_catalog")
def test_live_constraints_from_a_snapshot(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = compliance("--root", str(root), "--format", "json", "--today", "2026-01-01",
                        "--snapshot", f"prod={root / 'live/prod.yaml'}")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["snapshots"] == ["prod"]
    table = rows(data)
    image_tag = table[("best-practice", "image-tag")]
    assert image_tag["cells"]["prod"]["live"] == "warn"
    assert image_tag["cells"]["dev"]["live"] == ""
    assert image_tag["flags"] == ["live warn in prod, repository says deny"]
    privileged = table[("pss-baseline", "pss-privileged")]
    assert privileged["cells"]["prod"]["live"] == "absent"
    assert privileged["flags"] == ["missing in dev", "not live in prod"]
    owner = table[("repository", "K8sRequiredLabels/workloads-must-have-owner")]
    assert owner["cells"]["prod"]["live"] == "deny"  # no enforcementAction means deny
    hand = table[("live-only", "K8sAllowedRepos/hand-applied")]
    assert hand["cells"] == {
        "dev": {"status": "missing", "violations": 0, "accepted": 0, "live": ""},
        "prod": {"status": "missing", "violations": 0, "accepted": 0, "live": "dryrun"}}
    assert hand["flags"] == ["live in prod but not in the repository"]
    text = compliance("--root", str(root), "--today", "2026-01-01",
                      "--snapshot", f"prod={root / 'live/prod.yaml'}").stdout
    assert "deny 1/0 live=warn" in text
    assert "dev (development): 1 deny, 0 warn, 1 dryrun, 1 missing" in text


@pytest.mark.usefixtures("mini_catalog")
def test_snapshot_errors(tmp_path: Path) -> None:
    root = tree(tmp_path)
    missing = compliance("--root", str(root), "--snapshot", f"prod={root / 'nope.yaml'}")
    assert missing.exit_code == 2
    assert "snapshot file does not exist" in missing.stderr
    unknown = compliance("--root", str(root), "--snapshot", f"qa={root / 'live/prod.yaml'}")
    assert unknown.exit_code == 2
    assert "dev, prod" in unknown.output


@pytest.mark.usefixtures("mini_catalog")
def test_markdown(tmp_path: Path) -> None:
    root = tree(tmp_path)
    md = compliance("--root", str(root), "--format", "markdown", "--today", "2026-01-01").stdout
    assert md.startswith("# Compliance matrix\n")
    assert "| dev (development) | 1 | 0 | 1 | 1 |" in md
    assert "## Pod Security Standards — `pss-baseline`" in md
    assert "| Pod Security Standards | `pss-baseline` | missing (0/1) | complete (1/1) |" in md
    assert "| `pss-privileged` Privileged containers are not allowed | MISSING | deny 1/0 | " \
           "⚠️ missing in dev |" in md
    again = compliance("--root", str(root), "--format", "markdown", "--today", "2026-01-01")
    assert again.stdout == md


def test_multi_cluster_example() -> None:
    result = compliance("--root", str(EXAMPLE), "--format", "json", "--today", "2026-01-01")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["name"] for c in data["clusters"]] == ["staging", "production"]
    table = rows(data)
    assert table[("best-practice", "image-tag")]["cells"] == {
        "staging": {"status": "deny", "violations": 0, "accepted": 1, "live": ""},
        "production": {"status": "deny", "violations": 0, "accepted": 1, "live": ""}}
    assert table[("pss-baseline", "pss-privileged")]["cells"] == {
        "staging": {"status": "deny", "violations": 0, "accepted": 2, "live": ""},
        "production": {"status": "deny", "violations": 0, "accepted": 2, "live": ""}}
    owner = table[("repository", "K8sRequiredLabels/workloads-must-have-owner")]
    assert owner["cells"]["staging"]["accepted"] == 1
    assert owner["cells"]["production"]["accepted"] == 0
    # The real catalog: a row per policy of every pack; both clusters select the config's
    # default packs (each policy enabled by default, with its constraint's action) and
    # nothing else, so no row is flagged.
    catalog = load_catalog()
    assert set(table) == {(pack, pid) for pack in catalog.packs
                          for pid in catalog.resolve([pack])} | {owner_key()}
    # on 2026-01-01 the Redis acceptance (expires 2026-10-31) still holds in production
    selected = {pid for pid in catalog.resolve(["pss-baseline", "best-practice"])
                if catalog.policies[pid].enabled}
    for (_, pid), row in table.items():
        if pid in selected:
            action = constraint_action(catalog.policies[pid].constraint_path)
            assert {c["status"] for c in row["cells"].values()} == {action}, pid
        elif row["pack"] != "repository":
            assert {c["status"] for c in row["cells"].values()} == {"missing"}, pid
    assert data["gaps"] == 0
    not_selected = len(set(catalog.policies) - selected)
    assert data["totals"]["staging"] == {"active": len(selected) + 1, "warn": 0, "dryrun": 0,
                                         "missing": not_selected, "violations": 0,
                                         "accepted": 4}
    assert data["totals"]["production"] == {"active": len(selected) + 1, "warn": 0,
                                            "dryrun": 0, "missing": not_selected,
                                            "violations": 0, "accepted": 3}


def owner_key() -> tuple[str, str]:
    return ("repository", "K8sRequiredLabels/workloads-must-have-owner")


def constraint_action(path: Path) -> str:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))["spec"]
    return str(spec.get("enforcementAction", "deny"))
