"""Guardrails and image allowlists come from .gitops-checker.yaml when no flag is given."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from checker.cli import cli
from tests.overview.test_audit_trail import Repo, audit
from tests.overview.test_audit_trail import repo as repo
from tests.overview.test_images import tree


def test_config_requires_signed_commits(repo: tuple[Repo, dict[str, str]]) -> None:
    """guardrails.requireSignedCommits makes unsigned commits fail without --require-signed."""
    r, shas = repo
    relaxed = audit(r, "--format", "json", "--base", shas["rotate"])
    assert relaxed.exit_code == 0
    (r.path / ".gitops-checker.yaml").write_text(
        "version: 1\nguardrails:\n  requireSignedCommits: true\n", encoding="utf-8")
    strict = audit(r, "--format", "json", "--base", shas["rotate"])
    assert strict.exit_code == 1
    data = json.loads(strict.stdout)
    assert data["guardrails"]["signatures"]["required"] is True
    assert len(data["guardrails"]["signatures"]["unsigned"]) == 3


def test_bad_guardrails_config_is_exit_2_with_line(repo: tuple[Repo, dict[str, str]]) -> None:
    r, _ = repo
    (r.path / ".gitops-checker.yaml").write_text(
        "version: 1\nguardrails:\n  requireSignedCommits: sometimes\n", encoding="utf-8")
    result = audit(r, "--format", "json")
    assert result.exit_code == 2
    assert ".gitops-checker.yaml:3" in result.output


def test_config_allowed_registries(tmp_path: Path) -> None:
    """images.allowedRegistries flags images from elsewhere, like --allowed-registry does."""
    root = tree(tmp_path)
    runner = CliRunner()
    args = ["images", str(root / "staging"), str(root / "production"), "--root", str(root),
            "--format", "json"]
    open_result = runner.invoke(cli, args)
    assert open_result.exit_code == 0, open_result.output
    assert json.loads(open_result.stdout)["summary"].get("disallowed-registry", 0) == 0
    (root / ".gitops-checker.yaml").write_text(
        "version: 1\nimages:\n  allowedRegistries: [registry.example.com]\n", encoding="utf-8")
    configured = runner.invoke(cli, args)
    flagged = runner.invoke(cli, [*args, "--allowed-registry", "registry.example.com"])
    assert json.loads(configured.stdout)["summary"]["disallowed-registry"] > 0
    assert json.loads(configured.stdout)["images"] == json.loads(flagged.stdout)["images"]
