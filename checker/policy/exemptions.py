"""Namespace exemptions: which namespaces each policy skips, who said so, what it skipped.

A Constraint's ``spec.match.excludedNamespaces`` takes whole namespaces out of a policy, and
most built-in policies skip ``kube-system`` by default. An exemption must never be a silent
pass, so every scan lists them: per cluster and policy, the namespace globs, where the list
comes from (the pack's default Constraint, ``.gitops-checker.yaml``, a repository Constraint)
and how many of the cluster's objects the policy would otherwise have evaluated.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from checker.config import Cluster
from checker.model import Exemption, PolicyRecord, Resource
from checker.policy.match import Matcher, is_namespace, wildcard
from checker.policy.model import Policy


def _source(policy: Policy, cluster: Cluster) -> str:
    pid = policy.rule.id
    if not policy.source.startswith("pack:"):
        return f"repository {policy.constraint.location}"
    override: Mapping[str, Any] = cluster.overrides.get(pid, {})
    if "excludedNamespaces" in override:
        return cluster.override_sources.get(pid) or cluster.source or "config"
    if cluster.excluded_namespaces is not None:
        return cluster.excluded_source or cluster.source or "config"
    return policy.source.replace(":", " ", 1)


def exemptions(cluster: Cluster, policies: Sequence[Policy],
               resources: Sequence[Resource]) -> list[Exemption]:
    """The exemptions of ``policies`` in ``cluster`` and what each skipped of ``resources``."""
    out: list[Exemption] = []
    groups: Counter[tuple[str, str, str]] | None = None  # (group, kind, own namespace) -> objects
    for policy in policies:
        match = policy.constraint.match
        globs = tuple(str(n) for n in match.get("excludedNamespaces") or ())
        if not globs:
            continue
        if groups is None:
            groups = Counter((r.group, r.kind, r.name if is_namespace(r) else r.namespace)
                             for r in resources)
        matcher = Matcher(match)
        skipped = sum(n for (group, kind, own), n in groups.items()
                      if own and matcher.admits_kind(group, kind)
                      and any(wildcard(g, own) for g in globs))
        out.append(Exemption(cluster.name, policy.rule.id, globs, _source(policy, cluster),
                             skipped))
    return sorted(set(out))


def policy_digest(policy: Policy) -> str:
    """``sha256:`` of the canonical JSON of the template and the effective constraint."""
    text = json.dumps({"template": policy.template.body, "constraint": policy.constraint.body},
                      sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def policy_records(cluster: str, policies: Sequence[Policy]) -> list[PolicyRecord]:
    """What ran in ``cluster``: each policy with its constraint, action and content digest."""
    return [PolicyRecord(
        cluster, p.rule.id, p.source, f"{p.constraint.kind}/{p.constraint.name}",
        p.constraint.enforcement_action, p.severity.label, policy_digest(p),
        "" if p.source.startswith("pack:") else
        f"{p.constraint.location.path}:{p.constraint.location.line}") for p in policies]
