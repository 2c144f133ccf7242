"""Gatekeeper objects among a pull request's manifests cannot blind its own check.

The rule (docs/security.md, "The config file is part of the pull request"):

- ConstraintTemplates and Constraints judge only from the packs and the policies folders, which
  a base ref reads from git at the base commit. The same objects among the scanned manifests
  are what the change deploys, never policies of the check: a template the change rewrites to
  ``violation[{"msg": m}] { false }``, or adds next to the trusted one, removes no finding.
- A Gatekeeper ``Config`` among the manifests excludes namespaces from evaluation (as
  Gatekeeper's webhook and audit do). With a base ref only its base version counts: an edited
  Config is read as on the base ref, an added one is not used, each with an
  ``input.untrusted-config`` warning.
- A ValidatingAdmissionPolicy or binding the change edits is evaluated as on the base ref.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from checker.cli import cli
from tests.accept.test_four_eyes import git, put
from tests.trust.test_trusted_config import NEED_TEAM, PRIVILEGED

HOSTILE = NEED_TEAM.replace("not input.review.object.metadata.labels.team", "false")
CONFIG = ("apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata:\n  name: config\n"
          "  namespace: gatekeeper-system\nspec:\n  match:\n"
          "    - excludedNamespaces: {namespaces}\n      processes: [\"*\"]\n")


def _scan(repo: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(cli, ["scan", "--root", str(repo), "--format", "json",
                                      *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)["findings"]


def _repo(tmp_path: Path, base: dict[str, str], change: dict[str, str]) -> Path:
    r = tmp_path / "repo"
    for path, text in base.items():
        put(r, path, text)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "change")
    for path, text in change.items():
        put(r, path, text)
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "change", "--allow-empty")
    return r


def _rules(findings: list[dict[str, Any]], category: str = "policy") -> list[str]:
    return sorted(f["rule"] for f in findings if f["category"] == category)


def _untrusted(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["message"] for f in findings if f["rule"] == "input.untrusted-config")


GITOPS = ("clusters:\n  - name: prod\n    paths: [prod]\n    packs: [none]\n"
          "    policies: [prod/gatekeeper]\n")


def test_a_deployed_template_rewritten_to_false_still_judges_as_on_the_base(
        tmp_path: Path) -> None:
    """The cluster deploys its templates from the scanned tree (``prod/gatekeeper`` is both a
    policies folder and manifests). The change rewrites the Rego to ``false`` and adds a
    second copy of the hostile template elsewhere among the manifests."""
    repo = _repo(tmp_path, {"prod/pod.yaml": PRIVILEGED, "prod/gatekeeper/team.yaml": NEED_TEAM,
                            ".gitops-checker.yaml": GITOPS},
                 {"prod/gatekeeper/team.yaml": HOSTILE, "prod/apps/also-team.yaml": HOSTILE})
    code, findings = _scan(repo, "--accept-base", "main")
    assert code == 1
    assert _rules(findings) == ["NeedTeam/team"]
    (edited,) = _untrusted(findings)
    assert "policies folder prod/gatekeeper" in edited and "team.yaml" in edited
    # without the base ref (a push to the default branch) the checked-out Rego is the truth
    _code, without = _scan(repo, "--fail-on", "never")
    assert _rules(without) == []


def test_a_template_only_among_the_manifests_never_judges(tmp_path: Path) -> None:
    """A ConstraintTemplate outside every policies folder is deployed, not run: neither the
    base's nor the change's version decides a verdict, so rewriting it changes nothing."""
    config = GITOPS.replace("policies: [prod/gatekeeper]", "policies: [policies]")
    repo = _repo(tmp_path, {"prod/pod.yaml": PRIVILEGED, "policies/team.yaml": NEED_TEAM,
                            "prod/deployed/team.yaml": NEED_TEAM, ".gitops-checker.yaml": config},
                 {"prod/deployed/team.yaml": HOSTILE})
    _code, findings = _scan(repo, "--accept-base", "main", "--fail-on", "never")
    assert _rules(findings) == ["NeedTeam/team"]
    assert _untrusted(findings) == []


def test_a_gatekeeper_config_added_by_the_change_excludes_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"prod/pod.yaml": PRIVILEGED},
                 {"prod/gatekeeper-config.yaml": CONFIG.format(namespaces='["apps"]')})
    code, findings = _scan(repo, str(repo / "prod"), "--accept-base", "main")
    assert code == 1
    assert "pss-privileged" in " ".join(_rules(findings))
    (added,) = _untrusted(findings)
    assert "Gatekeeper Config gatekeeper-system/config is new in this change" in added
    assert not [f for f in findings if f["rule"] == "policy.not-evaluated"]
    # without a base ref the Config is the repository's: apps is left out, with a note
    code, without = _scan(repo, str(repo / "prod"))
    assert code == 0 and _rules(without) == ["policy.not-evaluated"]


def test_an_edited_gatekeeper_config_counts_as_on_the_base(tmp_path: Path) -> None:
    base = CONFIG.format(namespaces='["kube-system"]')
    repo = _repo(tmp_path, {"prod/pod.yaml": PRIVILEGED, "prod/gatekeeper-config.yaml": base},
                 {"prod/gatekeeper-config.yaml": CONFIG.format(
                     namespaces='["kube-system", "apps"]')})
    code, findings = _scan(repo, str(repo / "prod"), "--accept-base", "main")
    assert code == 1 and "pss-privileged" in " ".join(_rules(findings))
    (edited,) = _untrusted(findings)
    assert "the change edits it" in edited and "base ref main's namespace exclusions" in edited
    # a Config the change leaves alone applies as it is, without a finding
    git(repo, "checkout", "-q", "main")
    put(repo, "prod/gatekeeper-config.yaml", CONFIG.format(namespaces='["apps"]'))
    git(repo, "commit", "-q", "-am", "exclude apps on main")
    git(repo, "checkout", "-q", "-b", "unrelated")
    put(repo, "prod/other.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
                                 "  namespace: apps\ndata: {}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "unrelated")
    code, same = _scan(repo, str(repo / "prod"), "--accept-base", "main")
    assert code == 0 and _untrusted(same) == [] and _rules(same) == ["policy.not-evaluated"]


def _vap(expression: str, actions: str) -> str:
    import yaml

    from tests.policy.test_vap import BINDING, POLICY

    policy = json.loads(json.dumps(POLICY))
    policy["spec"]["validations"][0]["expression"] = expression
    binding = json.loads(json.dumps(BINDING))
    binding["spec"]["validationActions"] = [actions]
    return yaml.safe_dump_all([policy, binding], sort_keys=False)


DEPLOYMENT = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\n"
              "spec:\n  replicas: 9\n")


def _vap_findings(findings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((f["severity"], f["message"]) for f in findings
                  if "ValidatingAdmissionPolicy 'replicas'" in f["message"]
                  and f["rule"] != "input.untrusted-config")


def test_an_edited_validating_admission_policy_judges_as_on_the_base(tmp_path: Path) -> None:
    """The change rewrites the VAP's expression to ``true`` and turns the binding to Audit:
    both count as on the base ref, and each edit is a finding."""
    base = _vap("object.spec.replicas <= 5", "Deny")
    repo = _repo(tmp_path, {"prod/deploy.yaml": DEPLOYMENT, "prod/vap.yaml": base},
                 {"prod/vap.yaml": _vap("true", "Audit")})
    code, findings = _scan(repo, str(repo / "prod"), "--accept-base", "main", "--pack", "none")
    assert code == 1
    assert [s for s, _m in _vap_findings(findings)] == ["error"]
    edited = _untrusted(findings)
    assert len(edited) == 2 and all("the change edits it" in m for m in edited)
    assert any("ValidatingAdmissionPolicyBinding replicas-binding" in m for m in edited)
    _code, without = _scan(repo, str(repo / "prod"), "--pack", "none", "--fail-on", "never")
    assert _vap_findings(without) == []
    # an unchanged VAP gives no finding of its own and still judges
    git(repo, "checkout", "-q", "main")
    _code, same = _scan(repo, str(repo / "prod"), "--accept-base", "main", "--pack", "none",
                        "--fail-on", "never")
    assert _untrusted(same) == [] and [s for s, _m in _vap_findings(same)] == ["error"]
