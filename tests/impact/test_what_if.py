"""The what-if in a pull request: the change's manifests under the base's and the change's
policies, in a real git repository (``scan --accept-base``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from checker.impact import policy_changes
from checker.model import Impact, ImpactEntry, Report
from checker.options import ScanOptions
from checker.pipeline import scan
from tests.accept.test_four_eyes import git, put

TEMPLATE = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels: {type: array, items: {type: string}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels

        violation[{"msg": msg}] {
          provided := {label | input.review.object.metadata.labels[label]}
          required := {label | label := input.parameters.labels[_]}
          missing := required - provided
          count(missing) > 0
          msg := sprintf("missing required labels: %v", [sort(missing)])
        }
"""
DENY_NAME = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdeniedname
spec:
  crd:
    spec:
      names:
        kind: K8sDeniedName
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdeniedname

        violation[{"msg": msg}] {
          input.review.object.metadata.name == input.parameters.names[_]
          msg := sprintf("the name %v is retired", [input.review.object.metadata.name])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDeniedName
metadata:
  name: retired-names
spec:
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
  parameters:
    names: [db]
"""


def labels(name: str, wanted: list[str], action: str = "deny", kind: str = "Deployment",
           ) -> str:
    return (f"apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\n"
            f"metadata:\n  name: {name}\nspec:\n  enforcementAction: {action}\n  match:\n"
            f"    kinds: [{{apiGroups: [apps], kinds: [{kind}]}}]\n"
            f"  parameters:\n    labels: [{', '.join(wanted)}]\n")


def deployment(name: str, labels_: dict[str, str], privileged: bool = False) -> str:
    shown = ", ".join(f"{k}: {v}" for k, v in labels_.items())
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
            f"  namespace: shop\n  labels: {{{shown}}}\nspec:\n"
            f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n"
            f"      labels: {{app: {name}}}\n    spec:\n      containers:\n"
            f"        - name: c\n          image: registry.example.com/{name}:1.0\n"
            f"          securityContext: {{privileged: {str(privileged).lower()}}}\n")


def config(stage_severity: str) -> str:
    return ("clusters:\n"
            "  - name: prod\n    paths: [prod]\n    packs: [pss-baseline]\n"
            "    policies: [policies]\n    snapshot: live/prod.yaml\n"
            "  - name: stage\n    paths: [stage]\n    packs: [pss-baseline]\n"
            "    policies: [policies]\n"
            f"    overrides:\n      pss-privileged: {{severity: {stage_severity}}}\n"
            "acceptances:\n  paths: [accept]\n")


ACCEPT_DB = ("acceptances:\n  - id: RA-7\n    policy: pss-privileged\n    resources:\n"
             "      - {cluster: prod, namespace: shop, name: db}\n"
             "    justification: The database agent needs the host.\n"
             "    owner: team-data\n    approver: security\n    expires: \"2027-06-30\"\n")


SECRET_VALUE = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk"  # base64 of super-secret-password
LIVE = (
    "apiVersion: v1\nkind: List\nitems:\n"
    "  - apiVersion: apps/v1\n    kind: Deployment\n"
    "    metadata: {name: web, namespace: shop, labels: {owner: shop}}\n"
    "    spec: {template: {spec: {containers: [{name: c, image: registry.example.com/web:1.0}]}}}\n"
    "  - apiVersion: apps/v1\n    kind: Deployment\n"
    "    metadata: {name: legacy, namespace: shop, labels: {owner: ops, team: ops, docs: x}}\n"
    "    spec: {template: {spec: {containers: [{name: c, image: registry.example.com/l:1}]}}}\n"
    "  - apiVersion: v1\n    kind: Secret\n"
    "    metadata: {name: db-password, namespace: shop}\n"
    f"    data: {{password: {SECRET_VALUE}}}\n")
ECHO = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8secho
spec:
  crd:
    spec:
      names:
        kind: K8sEcho
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8secho

        violation[{"msg": msg}] {
          input.review.object.kind == "Secret"
          msg := sprintf("leaked %v", [input.review.object.data])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sEcho
metadata:
  name: echo
spec:
  match:
    kinds: [{apiGroups: [""], kinds: [Secret]}]
"""


def base_tree(r: Path) -> None:
    for cluster in ("prod", "stage"):
        put(r, f"{cluster}/web.yaml", deployment("web", {"owner": "shop"}))
        put(r, f"{cluster}/db.yaml", deployment("db", {"app": "db"}, privileged=True))
    put(r, "policies/template.yaml", TEMPLATE)
    put(r, "policies/owner.yaml", labels("owner", ["owner"]))
    put(r, "policies/tier.yaml", labels("tier", ["tier"]))
    put(r, "policies/docs.yaml", labels("docs", ["docs"], action="dryrun"))
    put(r, ".gitops-checker.yaml", config("warning"))
    put(r, "accept/data.yaml", ACCEPT_DB)
    put(r, "live/prod.yaml", LIVE)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main: the policies as reviewed. The pull request changes only policy inputs."""
    r = tmp_path_factory.mktemp("what-if") / "repo"
    base_tree(r)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "reviewed policies")
    git(r, "checkout", "-q", "-b", "pr")
    put(r, "policies/owner.yaml", labels("owner", ["owner", "team"]))       # tightens
    put(r, "policies/tier.yaml", labels("tier", ["tier"], kind="StatefulSet"))  # relaxes
    put(r, "policies/docs.yaml", labels("docs", ["docs"], action="deny"))    # enforcement
    put(r, "policies/denied-name.yaml", DENY_NAME)                           # a new template
    put(r, "policies/echo.yaml", ECHO)               # a policy that copies live data out
    put(r, "live/prod.yaml", LIVE.replace("labels: {owner: shop}", "labels: {}"))  # ignored
    put(r, ".gitops-checker.yaml", config("error"))                          # an override
    (r / "accept/data.yaml").unlink()                                        # an acceptance
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "tighten the policies")
    return r


def _scan(repo: Path, **extra: object) -> Report:
    options = ScanOptions(paths=(repo,), root=repo, accept_base="main",
                          today=dt.date(2026, 12, 1), **extra)  # type: ignore[arg-type]
    return scan(options)


@pytest.fixture(scope="module")
def report(repo: Path) -> Report:
    return _scan(repo)


def _impact(report: Report) -> Impact:
    assert report.impact is not None
    return report.impact


def _entries(report: Report, policy_suffix: str, cluster: str = "prod") -> list[ImpactEntry]:
    return [e for e in _impact(report).entries if e.against == "desired"
            and e.cluster == cluster and e.policy.endswith(policy_suffix)]


def _name(e: ImpactEntry) -> str:
    assert e.ref is not None
    return e.ref.name


def test_the_gate_stays_the_base_refs(report: Report) -> None:
    # the change's policies only report: the check's findings are the base ref's
    rules = {f.rule_id for f in report.active if f.category == "policy"}
    assert not any(r.endswith("retired-names") or "deniedname" in r for r in rules)
    assert _impact(report).base == "main"


def test_a_tightened_constraint_newly_fails_objects_in_every_cluster(report: Report) -> None:
    for cluster in ("prod", "stage"):
        (entry,) = _entries(report, "owner", cluster)
        assert (entry.outcome, _name(entry), entry.against) == ("fails", "web", "desired")
        assert "K8sRequiredLabels/owner changed" in entry.why
        assert "team" in entry.message
        assert entry.location.path == f"{cluster}/web.yaml"


def test_a_relaxed_constraint_newly_passes_objects(report: Report) -> None:
    entries = _entries(report, "tier")
    assert sorted((e.outcome, _name(e)) for e in entries) == [("passes", "db"),
                                                              ("passes", "web")]


def test_an_enforcement_flip_is_shown_as_dryrun_to_deny(report: Report) -> None:
    entries = _entries(report, "docs")
    assert sorted(_name(e) for e in entries) == ["db", "web"]
    for e in entries:
        assert e.outcome == "enforcement"
        assert (e.enforcement_before, e.enforcement_after) == ("dryrun", "deny")
        assert (e.severity_before, e.severity_after) == ("note", "error")
        assert "enforcementAction dryrun -> deny" in e.why


def test_a_new_template_fails_what_it_matches(report: Report) -> None:
    (entry,) = _entries(report, "retired-names")
    assert (entry.outcome, _name(entry)) == ("fails", "db")
    assert "new policy K8sDeniedName/retired-names from the repository's policies" in entry.why
    added = [c for c in _impact(report).changes if c.change == "added"]
    assert {(c.cluster, c.constraint) for c in added} == {
        (cluster, constraint) for cluster in ("prod", "stage")
        for constraint in ("K8sDeniedName/retired-names", "K8sEcho/echo")}


def test_a_removed_acceptance_newly_fails_the_object(report: Report) -> None:
    (entry,) = _entries(report, "pss-privileged", "prod")
    assert (entry.outcome, _name(entry)) == ("fails", "db")
    assert "removes (or changes) the acceptance" in entry.why
    assert "accept/data.yaml" in entry.why


def test_a_cluster_override_changes_the_severity_in_that_cluster_only(report: Report) -> None:
    (entry,) = _entries(report, "pss-privileged", "stage")
    assert (entry.outcome, _name(entry)) == ("enforcement", "db")
    assert (entry.severity_before, entry.severity_after) == ("warning", "error")
    assert "severity warning -> error" in entry.why
    changed = [c for c in _impact(report).changes if c.policy == "pss-privileged"]
    assert [(c.cluster, c.severity_before, c.severity_after) for c in changed] == [
        ("stage", "warning", "error")]


def test_the_records_pair_with_the_changes(report: Report, repo: Path) -> None:
    impact = _impact(report)
    assert impact.changes == tuple(sorted(impact.changes))
    # the gate's records are the base's: evaluating them against themselves changes nothing
    assert policy_changes(report.policy_records, report.policy_records) == ()
    assert not impact.problems


def test_no_policy_change_no_what_if(tmp_path: Path) -> None:
    r = tmp_path / "repo"
    base_tree(r)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "pr")
    put(r, "prod/web.yaml", deployment("web", {"owner": "shop", "tier": "front"}))
    git(r, "commit", "-q", "-am", "a manifest change only")
    assert _scan(r).impact is None
    assert _scan(r, what_if=False).impact is None


def test_a_broken_policy_of_the_change_is_a_finding_not_an_empty_impact(tmp_path: Path,
                                                                          ) -> None:
    r = tmp_path / "repo"
    base_tree(r)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "pr")
    put(r, ".gitops-checker.yaml", config("error").replace(
        "pss-privileged: {severity: error}", "no-such-policy: {severity: error}"))
    git(r, "commit", "-q", "-am", "an override of an unknown policy")
    report = _scan(r)
    impact = _impact(report)
    assert impact.entries == ()
    (problem,) = impact.problems
    assert "no-such-policy" in problem
    assert [f.rule_id for f in report.findings if f.rule_id == "input.impact-not-evaluated"
            ] == ["input.impact-not-evaluated"]


def _live(report: Report, suffix: str) -> list[ImpactEntry]:
    return [e for e in _impact(report).entries
            if e.against == "live" and e.policy.endswith(suffix)]


def test_the_impact_on_live_objects_is_shown_too(report: Report) -> None:
    assert _impact(report).live == ("prod",)
    # web is declared: located at its manifest; it fails the tightened constraint live too
    (web,) = _live(report, "owner")
    assert (web.outcome, _name(web), web.cluster) == ("fails", "web", "prod")
    assert web.location.path == "prod/web.yaml"
    # legacy exists only live: located at the snapshot file; the relaxed constraint passes it
    legacy = [e for e in _live(report, "tier") if _name(e) == "legacy"]
    assert [(e.outcome, e.location.path) for e in legacy] == [("passes", "live/prod.yaml")]
    # the snapshot is read from the base ref: the change's edit of it (web without labels,
    # so web would fail the base's owner constraint too) is not what was evaluated
    assert [e.outcome for e in _live(report, "owner")] == ["fails"]


def test_live_secret_values_never_reach_the_change_s_policies(report: Report) -> None:
    from checker.report import json_format, markdown

    (echo,) = _live(report, "echo")
    assert echo.outcome == "fails" and _name(echo) == "db-password"
    assert "hmac-sha256:" in echo.message
    for text in (json_format.render(report), markdown.render(report), repr(report)):
        assert SECRET_VALUE not in text
        assert "super-secret-password" not in text


def test_a_snapshot_missing_on_the_base_is_a_finding(tmp_path: Path) -> None:
    r = tmp_path / "repo"
    base_tree(r)
    (r / "live/prod.yaml").unlink()
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "pr")
    put(r, "policies/owner.yaml", labels("owner", ["owner", "team"]))
    put(r, "live/prod.yaml", LIVE)  # the change's own "live" objects are not trusted as such
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "tighten")
    report = _scan(r)
    impact = _impact(report)
    assert impact.live == ()
    assert [e.cluster for e in impact.entries if e.policy.endswith("owner")] == ["prod", "stage"]
    (problem,) = impact.problems
    assert "the snapshot live/prod.yaml is not on the base ref main" in problem
    assert any(f.rule_id == "input.impact-not-evaluated" and f.location.path == "live/prod.yaml"
               for f in report.findings)


def test_a_change_of_acceptances_alone_gets_its_impact(tmp_path: Path) -> None:
    r = tmp_path / "repo"
    base_tree(r)
    (r / "live/prod.yaml").unlink()
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "pr")
    (r / "accept/data.yaml").unlink()  # nothing else changes: no config, no policy
    git(r, "commit", "-q", "-am", "drop the database's acceptance")
    impact = _impact(_scan(r))
    assert impact.changes == ()
    assert [(e.cluster, e.outcome, _name(e)) for e in impact.entries] == [
        ("prod", "fails", "db")]
    assert "accept/data.yaml" in impact.entries[0].why


def test_a_cluster_the_change_removes_is_not_a_policy_change(tmp_path: Path) -> None:
    r = tmp_path / "repo"
    base_tree(r)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "pr")
    put(r, ".gitops-checker.yaml", config("warning").split("  - name: stage")[0]
        + "acceptances:\n  paths: [accept]\n")
    put(r, "policies/owner.yaml", labels("owner", ["owner", "team"]))
    git(r, "commit", "-q", "-am", "retire stage, tighten owner")
    report = _scan(r)
    impact = _impact(report)
    assert {e.cluster for e in impact.entries} == {"prod"}
    assert {c.cluster for c in impact.changes} == {"prod"}
    # the removal itself is told by the trust stage
    assert any("cluster stage is removed" in f.message for f in report.findings)
