"""Risk acceptances: justified, owned, expiring exceptions to a policy.

Two sources:

* acceptance files in the repository (``.gitops-checker/acceptances/*.yaml`` by default, so
  CODEOWNERS can guard them), validated with ``checker/schemas/risk-acceptance.schema.json``;
* annotations on the object, its pod template or its Namespace:
  ``securitytower.io/policy.exclusion.<lower-cased constraint kind>: "<reason>"`` (the form
  Syncier Security Tower users already have) and ``gitops-checker.io/accept.<policy>: "<reason>"``
  (``<policy>`` is a rule id or a lower-cased constraint kind), with optional
  ``gitops-checker.io/accept-owner`` and ``gitops-checker.io/accept-expires`` on the same object.

Acceptances only take findings out of the failing set; the findings stay in the report with a
``Suppression``. An expired acceptance suppresses nothing and fails the check naming its owner;
one expiring within the warning window warns; one that matches no finding is stale. The date
is passed in (``today``): nothing here reads the clock.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema

from checker.drift.rules import DRIFT_RULES
from checker.load.objects import YAML_SUFFIXES, read_documents, relpath
from checker.load.yamlfile import Document
from checker.model import Finding, ObjectRef, Resource, Severity, SourceLocation, Suppression

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
_GK_GLOB = re.compile(r"^\*?[^*?\[\]]*\*?$")
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
            return wanted in (finding.rule_id.lower(), ckind.lower())
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
        )


@dataclass
class Outcome:
    """Findings after acceptances, plus the findings about the acceptances themselves."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)


def acceptance_schema() -> dict[str, Any]:
    """The shipped JSON Schema of acceptance files."""
    text = importlib_resources.files("checker").joinpath(
        "schemas/risk-acceptance.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _problem(rule: str, severity: Severity, message: str, location: SourceLocation,
             **details: Any) -> Finding:
    return Finding(rule_id=rule, category="acceptance", severity=severity, message=message,
                   location=location, details=details)


def _line(doc: Document, path: Sequence[Any]) -> int:
    key = tuple(path)
    for end in range(len(key), -1, -1):
        span = doc.spans.get(key[:end])
        if span is not None:
            return span[0]
    return doc.line


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
    return list(dict.fromkeys(out))


def load_acceptances(paths: Iterable[Path], root: Path) -> tuple[list[Acceptance], list[Finding]]:
    """Read acceptance files; an invalid file or entry is an error finding, the rest still load."""
    validator = jsonschema.Draft7Validator(acceptance_schema())
    out: list[Acceptance] = []
    problems: list[Finding] = []
    seen: dict[str, SourceLocation] = {}
    for file in _files(paths):
        rel = relpath(file, root)
        docs, findings = read_documents(file, rel, root)
        for f in findings:
            problems.append(_problem(RULE_INVALID, Severity.ERROR,
                                     f"acceptance file cannot be read: {f.message}", f.location))
        for doc in docs:
            errors = sorted(validator.iter_errors(doc.data),
                            key=lambda e: _line(doc, list(e.absolute_path)))
            if errors:
                err = errors[0]
                where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
                problems.append(_problem(
                    RULE_INVALID, Severity.ERROR, f"invalid acceptance at {where}: {err.message}",
                    SourceLocation(rel, _line(doc, list(err.absolute_path)))))
                continue
            for index, entry in enumerate(doc.data["acceptances"]):
                loc = SourceLocation(rel, _line(doc, ["acceptances", index]))
                try:
                    expires = dt.date.fromisoformat(entry["expires"])
                except ValueError:
                    problems.append(_problem(RULE_INVALID, Severity.ERROR,
                                             f"acceptance {entry['id']}: expires "
                                             f"{entry['expires']!r} is not a date (YYYY-MM-DD)",
                                             SourceLocation(rel, _line(
                                                 doc, ["acceptances", index, "expires"]))))
                    continue
                if entry["id"] in seen:
                    problems.append(_problem(RULE_INVALID, Severity.ERROR,
                                             f"acceptance id {entry['id']!r} is already used at "
                                             f"{seen[entry['id']]}", loc))
                    continue
                seen[entry["id"]] = loc
                selectors = tuple(Selector(
                    cluster=str(s.get("cluster", "*")), namespace=str(s.get("namespace", "*")),
                    kind=str(s.get("kind", "*")), name=str(s.get("name", "*")),
                    labels={str(k): str(v) for k, v in (s.get("labels") or {}).items()},
                ) for s in entry["resources"])
                out.append(Acceptance(
                    id=entry["id"], policy=entry["policy"], selectors=selectors,
                    justification=" ".join(entry["justification"].split()),
                    owner=entry["owner"], expires=expires, location=loc,
                    approver=entry.get("approver", ""), ticket=entry.get("ticket", ""),
                ))
    return out, problems


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


def inline_acceptances(cluster: str, res: Resource,
                       namespaces: Mapping[str, Resource]) -> list[Acceptance]:
    """Annotation acceptances for ``res``: its own, its pod template's and its Namespace's."""
    found: list[Acceptance] = []
    sources: list[tuple[Resource, tuple[str, ...]]] = [(res, p) for p in _TEMPLATE_PATHS]
    ns = namespaces.get(res.namespace) if res.namespace else None
    if ns is not None:
        sources.append((ns, ("metadata", "annotations")))
    for holder, path in sources:
        annotations = _annotations(holder.body, path)
        owner = annotations.get(OWN_OWNER, "")
        expires: dt.date | None = None
        try:
            expires = dt.date.fromisoformat(annotations[OWN_EXPIRES]) \
                if OWN_EXPIRES in annotations else None
        except ValueError:
            expires = None
        for key, reason in sorted(annotations.items()):
            if key.startswith(ST_PREFIX):
                policy = key[len(ST_PREFIX):]
            elif key.startswith(OWN_PREFIX):
                policy = key[len(OWN_PREFIX):]
            else:
                continue
            loc = holder.locate((*path, key))
            found.append(Acceptance(
                id=key, policy=policy,
                selectors=(Selector(cluster=cluster, namespace=res.namespace or "",
                                    kind=res.kind, name=res.name),),
                justification=" ".join(reason.split()) or "(no reason given)", owner=owner,
                expires=expires, location=loc, kind="annotation",
                holder=(holder.kind, holder.name),
            ))
    return found


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


class BaseApproval:
    """Whether an acceptance is on the base ref exactly as it is now (four eyes).

    ``base`` is the branch the change will be merged into (a pull request's base commit),
    read through git; paths are relative to ``root``, a folder of the repository. A file
    acceptance is approved when the same file at ``base`` has an entry with the same id and the
    same policy, resources, justification, owner, expiry, approver and ticket. An annotation
    is approved when, in the same file at ``base``, an object of the same kind and name carries
    the same annotation with the same text (and the same owner and expiry annotations). A
    file or a commit git cannot read approves nothing.
    """

    def __init__(self, root: Path, base: str) -> None:
        from checker.errors import InputError
        from checker.inventory.git import Git

        if not base or base.startswith("-"):
            raise InputError(f"invalid acceptance base {base!r}")
        self.base = base
        self._git = Git(root)
        try:
            commit = self._git.run("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}",
                                   ok=(0, 1)).strip()
            if not commit:
                raise InputError(
                    f"acceptance base {base}: no such commit here; fetch it (actions/checkout "
                    "with fetch-depth: 0, or 2 for a pull request's merge commit)")
            self.commit = commit
            top = self._git.top.resolve()
            rel = root.resolve().relative_to(top)
            self.prefix = "" if str(rel) == "." else rel.as_posix() + "/"
        finally:
            self._git.close()
        self._files: dict[str, bytes | None] = {}
        self._cache: dict[tuple[str, int, str], bool] = {}

    def blob(self, path: str) -> bytes | None:
        """The bytes of ``path`` (relative to the root) at the base commit, or None."""
        return self._blob(path)

    def folder(self, path: str) -> dict[str, bytes]:
        """The regular files directly in folder ``path`` (relative to the root) at the base
        commit, by name (empty when the folder is not there)."""
        proc = self._git.call("ls-tree", "-z", f"{self.commit}:{self.prefix}{path}")
        if proc.returncode != 0:
            return {}
        out: dict[str, bytes] = {}
        for entry in proc.stdout.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            if meta.split(b" ")[:2] == [b"100644", b"blob"] or meta.startswith(b"100755 blob"):
                text = name.decode("utf-8", "replace")
                blob = self._blob(f"{path}/{text}")
                if blob is not None:
                    out[text] = blob
        return out

    def _blob(self, path: str) -> bytes | None:
        if path not in self._files:
            proc = self._git.call("cat-file", "blob", f"{self.commit}:{self.prefix}{path}")
            self._files[path] = proc.stdout if proc.returncode == 0 else None
        return self._files[path]

    def __call__(self, a: Acceptance) -> bool:
        key = (a.location.path, a.location.line, a.id)
        if key not in self._cache:
            self._cache[key] = (self._file_approved(a) if a.kind == "file"
                                else self._annotation_approved(a))
        return self._cache[key]

    def _documents(self, path: str) -> list[Any]:
        from checker.load.yamlfile import YamlProblem, decode, parse_documents

        blob = self._blob(path)
        if blob is None:
            return []
        try:
            return [d.data for d in parse_documents(decode(blob)) if isinstance(d, Document)]
        except YamlProblem:
            return []

    def _file_approved(self, a: Acceptance) -> bool:
        for doc in self._documents(a.location.path):
            entries = doc.get("acceptances") if isinstance(doc, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("id") == a.id:
                    return _same_entry(entry, a)
        return False

    def _annotation_approved(self, a: Acceptance) -> bool:
        kind, name = a.holder
        for doc in self._documents(a.location.path):
            if not isinstance(doc, dict) or doc.get("kind") != kind:
                continue
            meta = doc.get("metadata")
            if not isinstance(meta, dict) or str(meta.get("name", "")) != name:
                continue
            for path in _TEMPLATE_PATHS:
                notes = _annotations(doc, path)
                if a.id not in notes:
                    continue
                reason = " ".join(notes[a.id].split()) or "(no reason given)"
                if (reason == a.justification and notes.get(OWN_OWNER, "") == a.owner
                        and _date(notes.get(OWN_EXPIRES)) == a.expires):
                    return True
        return False


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _same_entry(entry: Mapping[str, Any], a: Acceptance) -> bool:
    """An acceptance file entry of the base ref equals the acceptance as loaded now."""
    try:
        expires = dt.date.fromisoformat(str(entry.get("expires")))
        selectors = tuple(Selector(
            cluster=str(s.get("cluster", "*")), namespace=str(s.get("namespace", "*")),
            kind=str(s.get("kind", "*")), name=str(s.get("name", "*")),
            labels={str(k): str(v) for k, v in (s.get("labels") or {}).items()},
        ) for s in entry.get("resources") or [])
    except (ValueError, TypeError, AttributeError):
        return False
    return (str(entry.get("policy")) == a.policy and expires == a.expires
            and selectors == a.selectors
            and [dict(s.labels) for s in selectors] == [dict(s.labels) for s in a.selectors]
            and " ".join(str(entry.get("justification", "")).split()) == a.justification
            and str(entry.get("owner")) == a.owner
            and str(entry.get("approver", "")) == a.approver
            and str(entry.get("ticket", "")) == a.ticket)


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
        out.append(_problem(RULE_STALE, Severity.WARNING,
                            f"{what} for policy {a.policy} matches no finding; remove it "
                            f"(owner: {owner})", a.location, **details))
    return out


def to_gatekeeper_exclusions(
    constraint_body: Mapping[str, Any], acceptances: Sequence[Acceptance], *,
    rule_id: str = "", cluster: str = "", today: dt.date | None = None,
) -> tuple[dict[str, Any], list[tuple[Acceptance, str]]]:
    """Carry acceptances into a Constraint so the cluster agrees with CI.

    Acceptances for this constraint (by its kind, ``Kind/name``, name or ``rule_id``) that apply
    to ``cluster`` and have not expired by ``today`` become:

    * ``spec.match.excludedNamespaces`` entries, for selectors that cover whole namespaces
      (Gatekeeper globs: ``*`` only at the start and/or end);
    * a ``NotIn`` ``spec.match.labelSelector`` expression, for selectors of exactly one label
      and no kind or name.

    Gatekeeper cannot exclude objects by kind or name, nor several labels at once; those come
    back in the second value with the reason, and the constraint keeps enforcing them.
    """
    body = copy.deepcopy(dict(constraint_body))
    kind = str(body.get("kind", ""))
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
    probe = Finding(rule_id=rule_id or f"{kind}/{name}", category="policy",
                    severity=Severity.ERROR, message="", location=SourceLocation(""),
                    details={"constraint": f"{kind}/{name}"})
    spec = body.setdefault("spec", {})
    match = spec.setdefault("match", {})
    excluded: list[str] = list(match.get("excludedNamespaces") or [])
    label_exprs: list[dict[str, Any]] = []
    inexpressible: list[tuple[Acceptance, str]] = []
    for a in acceptances:
        if not a.covers_policy(probe):
            continue
        if today is not None and a.expires is not None and a.expires < today:
            continue
        for s in a.selectors:
            if cluster and not fnmatchcase(cluster, s.cluster):
                continue
            if s.namespace_only:
                if not _GK_GLOB.match(s.namespace):
                    inexpressible.append((a, f"namespace glob {s.namespace!r} has wildcards "
                                             "Gatekeeper does not support"))
                elif s.namespace not in excluded:
                    excluded.append(s.namespace)
            elif (len(s.labels) == 1 and s.kind == "*" and s.name == "*"
                  and s.namespace == "*"):
                (lkey, lvalue), = s.labels.items()
                label_exprs.append({"key": lkey, "operator": "NotIn", "values": [lvalue]})
            elif s.namespace == "*" and s.kind == "*" and s.name == "*" and not s.labels:
                inexpressible.append((a, "covers every object of the cluster; remove the "
                                         "constraint from that cluster instead"))
            else:
                inexpressible.append((a, "Gatekeeper constraints cannot exclude objects by "
                                         "kind or name (or by several labels at once)"))
    if excluded:
        match["excludedNamespaces"] = excluded
    if label_exprs:
        selector = match.setdefault("labelSelector", {})
        exprs = list(selector.get("matchExpressions") or [])
        exprs += [e for e in label_exprs if e not in exprs]
        selector["matchExpressions"] = exprs
    return body, inexpressible
