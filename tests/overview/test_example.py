"""All three overview commands on the multi-cluster example, committed as a scripted history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from tests.conftest import ROOT
from tests.overview.test_audit_trail import Repo

EXAMPLE = ROOT / "examples" / "multi-cluster"


@pytest.fixture()
def example_repo(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    root = tmp_path / "gitops"
    shutil.copytree(EXAMPLE, root)
    repo = Repo(root)
    shas = {"import": repo.commit("Import the platform repository", "Alice", 1)}
    staging = root / "clusters/staging/apps.yaml"
    staging.write_text(staging.read_text().replace("podinfo_tag: latest", "podinfo_tag: 6.8.0"))
    shas["promote"] = repo.commit("Staging: try podinfo 6.8.0", "Bob", 2)
    cache = root / "infrastructure/production/cache.yaml"
    cache.write_text(cache.read_text().replace("image: redis\n", "image: redis:7.2.4\n"))
    shas["pin"] = repo.commit("Production: pin redis", "Carol", 3)
    return repo, shas


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    return result


def test_audit_of_the_example_history(example_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, shas = example_repo
    result = run("audit", "--repo", str(repo.path), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["sha"] for c in data["commits"]] == [shas["pin"], shas["promote"], shas["import"]]
    pin, promote, imported = data["commits"]
    assert pin["changes"] == [{
        "change": "modified", "apiVersion": "apps/v1", "kind": "StatefulSet",
        "namespace": "cache", "name": "redis", "path": "infrastructure/production/cache.yaml",
        "oldPath": "", "fields": ["spec.template.spec.containers[0].image"]}]
    assert pin["author"] == {"name": "Carol", "email": "carol@example.com",
                             "date": "2024-01-03T10:00:00+00:00"}
    assert promote["changes"] == [{
        "change": "modified", "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization", "namespace": "flux-system", "name": "apps",
        "path": "clusters/staging/apps.yaml", "oldPath": "",
        "fields": ["spec.postBuild.substitute.podinfo_tag"]}]
    kinds = {(c["kind"], c["namespace"], c["name"]) for c in imported["changes"]}
    assert {c["change"] for c in imported["changes"]} == {"added"}
    assert ("StatefulSet", "cache", "redis") in kinds
    assert ("K8sRequiredLabels", "", "workloads-must-have-owner") in kinds
    assert ("Cluster", "", "production") in kinds  # the Security Tower cluster file
    assert data["summary"]["modified"] == 2
    only_prod = run("audit", "--repo", str(repo.path), "--format", "json",
                    str(repo.path / "infrastructure/production"))
    assert [c["sha"] for c in json.loads(only_prod.stdout)["commits"]] == [shas["pin"],
                                                                            shas["import"]]


def test_images_show_which_stage_is_behind(example_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, _ = example_repo
    result = run("images", "--root", str(repo.path), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    versions = {r["image"]: r for r in data["versions"]}
    assert versions["ghcr.io/stefanprodan/podinfo"] == {
        "image": "ghcr.io/stefanprodan/podinfo", "newest": "6.8.0", "behind": ["production"],
        "versions": {"staging": ["6.8.0"], "production": ["6.7.1"]}}
    podinfo = {u["cluster"]: u for u in data["images"]
               if u["image"]["repository"] == "stefanprodan/podinfo"}
    assert podinfo["production"]["flags"] == ["not-pinned", "behind"]
    assert podinfo["production"]["behindOf"] == ["staging"]
    assert podinfo["staging"]["flags"] == ["not-pinned"]
    redis = next(u for u in data["images"] if u["resource"]["name"] == "redis")
    assert redis["image"]["tag"] == "7.2.4" and redis["flags"] == ["not-pinned"]


def test_compliance_on_the_example_repo(example_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, _ = example_repo
    result = run("compliance", "--root", str(repo.path), "--format", "json",
                 "--today", "2026-01-01")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    image_tag = next(r for r in data["rows"] if r["policy"] == "image-tag")
    # staging no longer runs :latest, so its acceptance (RA-2026-003) has nothing to accept
    assert image_tag["cells"]["staging"] == {"status": "deny", "violations": 0, "accepted": 0,
                                             "live": ""}
    assert image_tag["cells"]["production"]["status"] == "deny"
    assert data["gaps"] == 0
