"""Accepted risks as data: the acceptance, its selectors, the rule ids of its findings."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from checker import securitytower
from checker.model import Finding, Resource, Severity, SourceLocation, Suppression

RULE_EXPIRED = "acceptance.expired"


RULE_EXPIRING = "acceptance.expiring"


RULE_STALE = "acceptance.stale"


RULE_INVALID = "acceptance.invalid"


RULE_INLINE_IGNORED = "acceptance.inline-ignored"


RULE_PENDING = "acceptance.pending-approval"


ST_PREFIX = "securitytower.io/policy.exclusion."


OWN_PREFIX = "gitops-checker.io/accept."


OWN_OWNER = "gitops-checker.io/accept-owner"


OWN_EXPIRES = "gitops-checker.io/accept-expires"
# Findings that describe a broken tool or policy, not a risk: never accepted.


NOT_ACCEPTABLE = frozenset({"policy.evaluation-error", "policy.invalid", "policy.match-undecided"})


ACCEPTABLE_CATEGORIES = frozenset({"policy", "drift"})


_GLOB_CHARS = re.compile(r"[*?\[]")


def _glob(pattern: str, value: str) -> bool:
    """Shell-style glob; the common cases (``*``, a literal) without the regex machinery."""
    if pattern == "*":
        return True
    if not _GLOB_CHARS.search(pattern):
        return pattern == value
    return fnmatchcase(value, pattern)


@dataclass(frozen=True)
class Selector:
    """Which resources an acceptance covers; each field is a glob, ``*`` by default."""

    cluster: str = "*"
    namespace: str = "*"
    kind: str = "*"
    name: str = "*"
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)

    def matches(self, cluster: str, res: Resource) -> bool:
        """Whether the resource (in this cluster) is covered."""
        own_ns = res.name if res.kind == "Namespace" and res.group == "" else res.namespace
        if not (_glob(self.name, res.name) and _glob(self.namespace, own_ns)
                and _glob(self.kind, res.kind) and _glob(self.cluster, cluster)):
            return False
        if self.labels:
            meta = res.body.get("metadata")
            labels = meta.get("labels") if isinstance(meta, dict) else None
            labels = labels if isinstance(labels, dict) else {}
            return all(str(labels.get(k)) == v for k, v in self.labels.items())
        return True

    @property
    def namespace_only(self) -> bool:
        """Covers whole namespaces (kind, name and labels left open)."""
        return self.kind == "*" and self.name == "*" and not self.labels and self.namespace != "*"


@dataclass(frozen=True)
class Acceptance:
    """One accepted risk."""

    id: str
    policy: str
    selectors: tuple[Selector, ...]
    justification: str
    owner: str
    expires: dt.date | None
    location: SourceLocation
    approver: str = ""
    ticket: str = ""
    kind: str = "file"             # "file" or "annotation"
    holder: tuple[str, str] = ("", "")  # annotation: kind and name of the annotated object

    def covers_policy(self, finding: Finding) -> bool:
        """Whether the finding's policy is the accepted one (rule id, constraint or its kind)."""
        constraint = str(finding.details.get("constraint", ""))
        ckind, _, cname = constraint.partition("/")
        if self.kind == "annotation":
            wanted = self.policy.lower()
            if wanted in (finding.rule_id.lower(), ckind.lower()):
                return True
            if securitytower.exclusion_policy(self.id) is None:
                return False
            return any(finding.rule_id == pid and needle in finding.message
                       for pid, needle in securitytower.aliases(wanted) or ())
        return any(fnmatchcase(candidate, self.policy) for candidate in
                   (finding.rule_id, constraint, ckind, cname) if candidate)

    def suppression(self) -> Suppression:
        """The Suppression attached to the findings this acceptance covers."""
        extra = ", ".join(x for x in (f"approved by {self.approver}" if self.approver else "",
                                      f"ticket {self.ticket}" if self.ticket else "") if x)
        return Suppression(
            kind=self.kind,
            justification=self.justification + (f" ({extra})" if extra else ""),
            owner=self.owner,
            expires=self.expires.isoformat() if self.expires else "",
            source=f"{self.location.path}:{self.location.line} ({self.id})",
            approver=self.approver, ticket=self.ticket,
        )


@dataclass
class Outcome:
    """Findings after acceptances, plus the findings about the acceptances themselves."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    used: set[tuple[str, int, str]] = field(default_factory=set)  # (path, line, id) that
    #                                   matched a finding (a fleet's shards add theirs up)


def _problem(rule: str, severity: Severity, message: str, location: SourceLocation,
             **details: Any) -> Finding:
    return Finding(rule_id=rule, category="acceptance", severity=severity, message=message,
                   location=location, details=details)


def _annotations(body: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, str]:
    node: Any = body
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return {str(k): str(v) for k, v in node.items()} if isinstance(node, dict) else {}


_TEMPLATE_PATHS: tuple[tuple[str, ...], ...] = (
    ("metadata", "annotations"),
    ("spec", "template", "metadata", "annotations"),
    ("spec", "jobTemplate", "spec", "template", "metadata", "annotations"),
)
