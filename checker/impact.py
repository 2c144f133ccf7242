"""Policy-change impact (the "what-if"): which objects the change's policies fail or pass.

A pull request that tightens a constraint, adds a template, flips an enforcement action,
changes a cluster's overrides or removes a risk acceptance changes verdicts on objects the
pull request does not touch. ``impact`` compares two evaluations of the *same* manifests (the
change's): ``before`` under the base ref's policies, packs, overrides, acceptances and
cluster config, ``after`` under the change's own. So what it reports is the policy change
alone, never a manifest change (that is the delta's business).

Pure functions of two ``Report`` values: no I/O. ``checker.pipeline`` runs the two
evaluations (the change's policies run only in the sandboxed engines, and only to report:
they never decide the check, see ``checker.trust``).

Findings are paired per cluster, policy, object (``ObjectRef``) and field path: the message
of a finding may change with a constraint's parameters while the verdict stays, so it is not
part of the pairing. An object with several findings of one policy on one field counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from checker.model import (
    FieldPath,
    Finding,
    Impact,
    ImpactEntry,
    ObjectRef,
    PolicyChange,
    PolicyRecord,
    Report,
)

__all__ = ["INTERNAL", "OUTCOMES", "build", "impact", "policy_changes"]

# policy findings that are about the evaluation, not a verdict on the object
INTERNAL = frozenset({"policy.evaluation-error", "policy.invalid", "policy.match-undecided",
                      "policy.template-note", "policy.not-evaluated",
                      "policy.engine-difference"})
# what the change's policies could not decide: reported, never a pass
UNDECIDED = frozenset({"policy.evaluation-error", "policy.invalid", "policy.match-undecided",
                       "policy.not-evaluated"})
OUTCOMES = ("fails", "enforcement", "passes", "not-checked")

_Key = tuple[str, str, ObjectRef | str, FieldPath]


def _key(f: Finding) -> _Key:
    who: ObjectRef | str = f.ref.in_cluster(f.cluster) if f.ref is not None else (
        f"{f.location.path}\0{f.resource}")
    return (f.cluster, f.rule_id, who, f.field_path)


def _verdicts(findings: Iterable[Finding]) -> dict[_Key, list[Finding]]:
    out: dict[_Key, list[Finding]] = {}
    for f in findings:
        if f.category == "policy" and f.rule_id not in INTERNAL:
            out.setdefault(_key(f), []).append(f)
    return out


def _records(records: Iterable[PolicyRecord]) -> dict[tuple[str, str], PolicyRecord]:
    return {(r.cluster, r.policy): r for r in sorted(records)}


def policy_changes(before: Sequence[PolicyRecord], after: Sequence[PolicyRecord],
                   ) -> tuple[PolicyChange, ...]:
    """The policies that differ per cluster: added, removed, or another digest, severity
    or enforcement action (``changed``)."""
    old, new = _records(before), _records(after)
    out: list[PolicyChange] = []
    for key in sorted(old.keys() | new.keys()):
        b, a = old.get(key), new.get(key)
        if b is not None and a is not None and (b.digest, b.severity, b.enforcement) == (
                a.digest, a.severity, a.enforcement):
            continue  # the severity of an override is not in the digest: compared too
        ref = a or b
        assert ref is not None
        change = "added" if b is None else "removed" if a is None else "changed"
        out.append(PolicyChange(
            cluster=key[0], policy=key[1], change=change, constraint=ref.constraint,
            enforcement_before=b.enforcement if b else "",
            enforcement_after=a.enforcement if a else "",
            severity_before=b.severity if b else "", severity_after=a.severity if a else "",
            location=(a.location if a else b.location if b else "")))
    return tuple(out)


def _source(record: PolicyRecord) -> str:
    if record.source.startswith("pack:"):
        return f"pack {record.source.removeprefix('pack:')}"
    return f"the repository's policies ({record.location})" if record.location else (
        "the repository's policies")


def _why(before: PolicyRecord | None, after: PolicyRecord | None,
         was: Finding | None, now: Finding | None) -> str:
    """Which change made the difference, in words."""
    reasons: list[str] = []
    was_accepted = was is not None and was.suppression is not None
    now_accepted = now is not None and now.suppression is not None
    if was_accepted and not now_accepted and was is not None and was.suppression is not None:
        reasons.append(f"the change removes (or changes) the acceptance "
                       f"{was.suppression.source or was.suppression.kind}")
    if now_accepted and not was_accepted and now is not None and now.suppression is not None:
        reasons.append(f"the change adds the acceptance "
                       f"{now.suppression.source or now.suppression.kind}")
    if before is None and after is not None:
        reasons.append(f"new policy {after.constraint} from {_source(after)}")
    elif after is None and before is not None:
        reasons.append(f"policy {before.constraint} ({_source(before)}) is no longer selected")
    elif before is not None and after is not None:
        parts = []
        if before.enforcement != after.enforcement:
            parts.append(f"enforcementAction {before.enforcement} -> {after.enforcement}")
        if before.severity != after.severity:
            parts.append(f"severity {before.severity} -> {after.severity}")
        if parts:
            reasons.append(f"{after.constraint}: " + ", ".join(parts))
        if before.digest != after.digest and before.enforcement == after.enforcement:
            reasons.append(f"{after.constraint} changed (its template or constraint, "
                           f"parameters and match included)")
    if not reasons:
        reasons.append("the change's configuration (admission, exemptions or limits)")
    return "; ".join(reasons)


def _active(items: Sequence[Finding] | None) -> Finding | None:
    for f in items or ():
        if f.suppression is None:
            return f
    return None


def _entry(against: str, outcome: str, f: Finding, why: str, was: Finding | None,
           now: Finding | None, record: PolicyRecord | None, old: PolicyRecord | None,
           ) -> ImpactEntry:
    details: Mapping[str, Any] = f.details
    return ImpactEntry(
        cluster=f.cluster, against=against, outcome=outcome, policy=f.rule_id,
        resource=f.resource, location=f.location, why=why, message=f.message,
        constraint=str(details.get("constraint") or "") or (
            record.constraint if record is not None else old.constraint if old is not None
            else ""),
        severity_before=was.severity.label if was is not None else "",
        severity_after=now.severity.label if now is not None else "",
        enforcement_before=old.enforcement if old is not None else "",
        enforcement_after=record.enforcement if record is not None else "",
        ref=f.ref, field_path=f.field_path)


def _order(e: ImpactEntry) -> tuple[Any, ...]:
    return (e.cluster, e.against, OUTCOMES.index(e.outcome), e.policy, e.location.path,
            e.location.line, e.resource, e.field_path, e.message)


def impact(before: Report, after: Report, against: str = "desired",
           ) -> tuple[ImpactEntry, ...]:
    """The objects whose verdict differs between ``before`` (the base's policies) and
    ``after`` (the change's), both evaluations of the same objects; see the module.

    An object fails when the change's policies find an active (not accepted) violation the
    base's do not, passes in the reverse case, and is an ``enforcement`` entry when both
    fail it with another enforcement action or severity. A policy of the change that could
    not be evaluated on an object (an evaluation error, an invalid template, an undecided
    match) is a ``not-checked`` entry: the what-if never reads it as a pass.
    """
    old_records, new_records = _records(before.policy_records), _records(after.policy_records)
    was_all, now_all = _verdicts(before.findings), _verdicts(after.findings)
    out: list[ImpactEntry] = []
    for key in sorted(was_all.keys() | now_all.keys(), key=repr):
        cluster, policy = key[0], key[1]
        old, new = old_records.get((cluster, policy)), new_records.get((cluster, policy))
        was, now = _active(was_all.get(key)), _active(now_all.get(key))
        any_was = next(iter(was_all.get(key) or ()), None)
        any_now = next(iter(now_all.get(key) or ()), None)
        if now is not None and was is None:
            out.append(_entry(against, "fails", now, _why(old, new, any_was, now), any_was,
                              now, new, old))
        elif was is not None and now is None:
            out.append(_entry(against, "passes", was, _why(old, new, was, any_now), was,
                              any_now, new, old))
        elif was is not None and now is not None and (
                was.severity != now.severity or (old is not None and new is not None
                                                 and old.enforcement != new.enforcement)):
            out.append(_entry(against, "enforcement", now, _why(old, new, was, now), was, now,
                              new, old))
    seen = {_key(f) for f in before.findings if f.rule_id in UNDECIDED}
    for f in after.findings:
        if f.rule_id in UNDECIDED and _key(f) not in seen:
            seen.add(_key(f))
            out.append(ImpactEntry(
                cluster=f.cluster, against=against, outcome="not-checked", policy=f.rule_id,
                resource=f.resource, location=f.location,
                why="the change's policy could not be evaluated here: its verdict is unknown",
                message=f.message, constraint=str(f.details.get("constraint") or ""),
                severity_after=f.severity.label, ref=f.ref, field_path=f.field_path))
    return tuple(sorted(out, key=_order))


def build(base: str, before: Report, after: Report,
          live: Sequence[tuple[str, Report, Report]] = ()) -> Impact:
    """The report's ``Impact``: the policy changes, and the entries against the desired
    state and, per cluster in ``live`` ((cluster, before, after) evaluations of its
    snapshot), against the live objects. Errors only the change's evaluation had are
    ``problems``."""
    entries = list(impact(before, after))
    problems = [e for e in after.errors if e not in set(before.errors)]
    for _cluster, live_before, live_after in live:
        entries += impact(live_before, live_after, "live")
        problems += [e for e in live_after.errors if e not in set(live_before.errors)]
    return Impact(base=base,
                  changes=policy_changes(before.policy_records, after.policy_records),
                  entries=tuple(sorted(entries, key=_order)),
                  live=tuple(sorted({c for c, _b, _a in live})),
                  problems=tuple(dict.fromkeys(problems)))
