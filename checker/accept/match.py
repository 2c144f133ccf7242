"""Matching: which acceptance accepts which finding (joined on the object's ObjectRef), and
the findings about the acceptances themselves (expired, expiring, stale, pending, ignored)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

from checker import securitytower
from checker.accept.load import inline_acceptances
from checker.accept.model import (
    _GLOB_CHARS,
    ACCEPTABLE_CATEGORIES,
    NOT_ACCEPTABLE,
    RULE_EXPIRED,
    RULE_EXPIRING,
    RULE_INLINE_IGNORED,
    RULE_PENDING,
    RULE_STALE,
    Acceptance,
    Outcome,
    _problem,
)
from checker.drift.rules import DRIFT_RULES
from checker.model import Finding, ObjectRef, Resource, Severity


def _from_ref(ref: ObjectRef, finding: Finding) -> Resource:
    """A bare Resource for an object not in the desired state (e.g. only live)."""
    return Resource(api_version=ref.api_version, kind=ref.kind, namespace=ref.namespace,
                    name=ref.name, body={}, location=finding.location, cluster=ref.cluster)


def _ref_index(resources: Iterable[Resource]) -> dict[ObjectRef, Resource]:
    return {r.ref: r for r in resources}


class _NameIndex:
    """Acceptances of one policy, indexed by literal resource name (most name one object)."""

    def __init__(self, acceptances: Sequence[Acceptance]) -> None:
        self.by_name: dict[str, list[tuple[int, Acceptance]]] = {}
        self.rest: list[tuple[int, Acceptance]] = []
        for position, a in enumerate(acceptances):
            names = {s.name for s in a.selectors}
            if any(_GLOB_CHARS.search(n) for n in names):
                self.rest.append((position, a))
            else:
                for n in names:
                    self.by_name.setdefault(n, []).append((position, a))

    def candidates(self, name: str) -> list[Acceptance]:
        """Acceptances that may cover an object of this name, in their original order."""
        found = self.by_name.get(name, [])
        if not found:
            return [a for _, a in self.rest]
        return [a for _, a in sorted([*found, *self.rest], key=lambda pair: pair[0])]


def apply(findings: Sequence[Finding], resources: Sequence[Resource],
          acceptances: Sequence[Acceptance], today: dt.date, *, inline: bool = True,
          warn_days: int = 14, approved: Callable[[Acceptance], bool] | None = None,
          base: str = "", ran: frozenset[str] = ACCEPTABLE_CATEGORIES) -> Outcome:
    """Mark accepted findings, and report expired, expiring, stale and ignored acceptances.

    ``resources`` carry their ``cluster``; a finding is tied to its resource by its
    ``ObjectRef`` (cluster, group, kind, namespace, name), never by the display string, so an
    annotation on one object cannot accept a finding on another of the same kind and name in
    another API group. A finding without a ``ref`` is about a file, not an object, and is not
    accepted. File acceptances win over annotations; the first that matches is used.

    Four eyes: with ``approved`` (see ``BaseApproval``), an acceptance for which it is false
    (new or changed since ``base``, the reviewed branch) accepts nothing; it is reported as
    ``acceptance.pending-approval`` instead, so the change's author cannot waive their own
    finding.

    ``ran`` names the categories of findings the run looked for (``policy``: the admit stage,
    ``drift``: the drift stage). An acceptance that matched nothing is stale only when every
    category it can accept was looked for: a scan does not call a drift acceptance stale, nor
    a drift run a policy acceptance.
    """
    approved = approved or (lambda a: True)
    outcome = Outcome()
    if not acceptances and not any(inline_acceptances(r.cluster, r, {}) for r in resources):
        # Nothing can accept anything (a Namespace's annotations are its own, walked here too)
        outcome.findings = list(findings)
        return outcome
    index = _ref_index(resources)
    namespaces: dict[str, dict[str, Resource]] = {}
    for r in resources:
        if r.kind == "Namespace" and r.group == "":
            namespaces.setdefault(r.cluster, {})[r.name] = r
    used: set[tuple[str, int, str]] = set()
    annotation_seen: dict[tuple[str, int, str], Acceptance] = {}
    inline_cache: dict[tuple[str, str], list[Acceptance]] = {}
    by_policy: dict[tuple[str, str], _NameIndex] = {}

    def key(a: Acceptance) -> tuple[str, int, str]:
        return (a.location.path, a.location.line, a.id)

    def expired(a: Acceptance) -> bool:
        return a.expires is not None and a.expires < today

    for finding in findings:
        ref = finding.ref
        res = index.get(ref) if ref is not None else None
        if res is None and ref is not None and finding.category == "drift":
            res = _from_ref(ref, finding)  # e.g. an object only live
        if (res is None or finding.category not in ACCEPTABLE_CATEGORIES
                or finding.rule_id in NOT_ACCEPTABLE or finding.suppression is not None):
            outcome.findings.append(finding)
            continue
        cache_key = (res.cluster, res.key)
        if cache_key not in inline_cache:
            inline_cache[cache_key] = inline_acceptances(
                res.cluster, res, namespaces.get(res.cluster, {}))
        if not acceptances and not inline_cache[cache_key]:
            outcome.findings.append(finding)  # nothing could accept it
            continue
        policy_key = (finding.rule_id, str(finding.details.get("constraint", "")))
        if policy_key not in by_policy:
            by_policy[policy_key] = _NameIndex(
                [a for a in acceptances if a.covers_policy(finding)])
        candidates = [a for a in by_policy[policy_key].candidates(res.name)
                      if any(s.matches(res.cluster, res) for s in a.selectors)]
        for a in inline_cache[cache_key]:
            annotation_seen.setdefault(key(a), a)
            if a.covers_policy(finding):
                if inline:
                    candidates.append(a)
                else:
                    used.add(key(a))
        chosen = None
        for a in candidates:
            used.add(key(a))
            if chosen is None and not expired(a) and approved(a):
                chosen = a
        if chosen is not None and (inline or chosen.kind == "file"):
            finding = replace(finding, suppression=chosen.suppression())
        outcome.findings.append(finding)

    # Annotations that no finding reached are found by walking every resource once.
    for r in resources:
        ck = (r.cluster, r.key)
        if ck not in inline_cache:
            inline_cache[ck] = inline_acceptances(r.cluster, r, {})
        for a in inline_cache[ck]:
            annotation_seen.setdefault(key(a), a)

    outcome.used = used

    def judged(a: Acceptance) -> bool:  # unused counts as stale, or was never looked for
        return key(a) in used or not categories(a) <= ran

    for a in acceptances:
        outcome.problems += (_lifecycle(a, today, warn_days, judged(a)) if approved(a)
                             else [_pending(a, base)])
    for _, a in sorted(annotation_seen.items()):
        if not inline:
            outcome.problems.append(_problem(
                RULE_INLINE_IGNORED, Severity.WARNING,
                f"annotation {a.id} is ignored: this repository accepts risks only in "
                "acceptance files (acceptances: files-only)", a.location, acceptance=a.id))
            continue
        outcome.problems += (_lifecycle(a, today, warn_days, judged(a)) if approved(a)
                             else [_pending(a, base)])
    return outcome


def categories(a: Acceptance) -> frozenset[str]:
    """The finding categories an acceptance can accept: ``drift`` when its policy names a
    drift rule, ``policy`` unless it names only drift rules (``drift.*``)."""
    wanted = a.policy.lower() if a.kind == "annotation" else a.policy
    out = set()
    if any(fnmatchcase(rule, wanted) for rule in DRIFT_RULES):
        out.add("drift")
    if not wanted.startswith("drift."):
        out.add("policy")
    return frozenset(out)


def _pending(a: Acceptance, base: str) -> Finding:
    what = f"acceptance {a.id}" if a.kind == "file" else f"annotation {a.id}"
    where = base or "the base branch"
    return _problem(
        RULE_PENDING, Severity.WARNING,
        f"{what} for policy {a.policy} is new or changed in this change (not on {where} as it "
        "is here), so it accepts nothing yet: a risk acceptance counts once someone other than "
        "its author has reviewed and merged it", a.location,
        acceptance=a.id, policy=a.policy, owner=a.owner, base=base)


def _lifecycle(a: Acceptance, today: dt.date, warn_days: int, used: bool) -> list[Finding]:
    what = f"acceptance {a.id}" if a.kind == "file" else f"annotation {a.id}"
    owner = a.owner or "unknown owner"
    details = {"acceptance": a.id, "policy": a.policy, "owner": a.owner,
               "expires": a.expires.isoformat() if a.expires else ""}
    if a.expires is not None and a.expires < today:
        return [_problem(RULE_EXPIRED, Severity.ERROR,
                         f"{what} for policy {a.policy} expired on {a.expires.isoformat()} "
                         f"(owner: {owner}); renew it or fix the findings it covered",
                         a.location, **details)]
    out = []
    if a.expires is not None and (a.expires - today).days <= warn_days:
        days = (a.expires - today).days
        out.append(_problem(RULE_EXPIRING, Severity.WARNING,
                            f"{what} for policy {a.policy} expires on {a.expires.isoformat()}, "
                            f"in {days} day{'s' if days != 1 else ''} (owner: {owner})",
                            a.location, **details))
    if not used:
        counterpart = ""
        if a.kind == "annotation" and securitytower.exclusion_policy(a.id) is not None:
            known = securitytower.aliases(a.policy)
            counterpart = (
                " (Security Tower policy with no gitops-checker counterpart)" if known == ()
                else "" if known is None else
                " (Security Tower policy checked here by "
                + ", ".join(dict.fromkeys(pid for pid, _ in known)) + ")")
        out.append(_problem(RULE_STALE, Severity.WARNING,
                            f"{what} for policy {a.policy}{counterpart} matches no finding; "
                            f"remove it (owner: {owner})", a.location, **details))
    return out
