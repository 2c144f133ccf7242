"""The data model every pipeline stage shares: plain, frozen data."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

FieldPath = tuple[str | int, ...]

# SARIF's ``baselineState`` words, which every format uses for the delta against a base
NEW = "new"
UNCHANGED = "unchanged"
ABSENT = "absent"  # a finding the base had and the head does not: fixed by the change
BASELINE_STATES = (NEW, UNCHANGED, ABSENT)

# Positions inside messages ("deploy/web.yaml:12", "line 7", "at line 3 of"): a finding's
# identity must survive a line move, so they are dropped from the message it is keyed on.
_FILE_POSITION = re.compile(
    r"((?:^|(?<=[\s\"'(\[]))[^\s\"'(\[]+\.(?:ya?ml|json|rego|tpl|cue|jsonnet|txt)):\d+(?::\d+)?")
_LINE_WORD = re.compile(r"\b(lines?) \d+(?:\s*[-\u2013]\s*\d+)?")


def _positionless(message: str) -> str:
    """``message`` with file positions and line numbers taken out (for identities)."""
    if ":" not in message and "line" not in message:  # most messages: nothing to take out
        return message
    return _LINE_WORD.sub(r"\1 #", _FILE_POSITION.sub(r"\1", message))


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A span in a file. ``path`` is relative to the repository root; lines are 1-based."""

    path: str
    line: int = 1
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class Severity(enum.IntEnum):
    """Finding severity, ordered so that comparisons mean 'at least as severe'."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse ``note``/``warning``/``error`` (case-insensitive)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        """Lower-case name used in every output format."""
        return self.name.lower()


@dataclass(frozen=True, order=True, slots=True)
class ObjectRef:
    """The identity of a Kubernetes object: what every join between stages uses.

    Acceptance (annotations and files), drift pairing, SARIF fingerprints and the Action's
    Secret handling compare ``ObjectRef`` values, never display strings. ``version`` is kept
    for display and output but is not part of equality, hashing or order: the API server
    stores one object per group, kind, namespace and name and serves it at every version of
    the group, so ``apps/v1`` and ``apps/v1beta2`` ``Deployment prod/web`` are one object,
    while ``apps.kruise.io/v1beta1`` and ``apps/v1`` ``StatefulSet prod/db`` are two.
    """

    cluster: str
    group: str
    version: str = field(compare=False)
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, api_version: str, kind: str, namespace: str, name: str,
           cluster: str = "") -> ObjectRef:
        """The reference of an object given its ``apiVersion`` (``group/version`` or ``v1``)."""
        group, _, version = api_version.rpartition("/")
        return cls(cluster, group, version, kind, namespace, name)

    @property
    def api_version(self) -> str:
        """``group/version``, or the version alone for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def display(self) -> str:
        """Human-readable ``Kind namespace/name`` (for display only: it is not unique)."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else (
            f"{self.kind} {self.name}")

    def __str__(self) -> str:
        cluster = f"{self.cluster}:" if self.cluster else ""
        return f"{cluster}{self.group}/{self.version}/{self.kind}/{self.namespace}/{self.name}"

    def in_cluster(self, cluster: str) -> ObjectRef:
        """The same object reference in ``cluster``."""
        return self if cluster == self.cluster else replace(self, cluster=cluster)


@dataclass(frozen=True)
class Resource:
    """One Kubernetes object of the desired state, with the source position of its fields."""

    api_version: str
    kind: str
    namespace: str
    name: str
    body: Mapping[str, Any]
    location: SourceLocation
    marks: Mapping[FieldPath, SourceLocation] = field(default_factory=dict, compare=False)
    cluster: str = ""

    @property
    def group(self) -> str:
        """API group ('' for the core group)."""
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        """API version without the group."""
        return self.api_version.rpartition("/")[2]

    @property
    def key(self) -> str:
        """``group/version/Kind/namespace/name``: unique within one cluster."""
        return f"{self.group}/{self.version}/{self.kind}/{self.namespace}/{self.name}"

    @property
    def ref(self) -> ObjectRef:
        """The object's identity (``ObjectRef``), in its cluster."""
        return ObjectRef(self.cluster, self.group, self.version, self.kind, self.namespace,
                         self.name)

    @property
    def display(self) -> str:
        """Human-readable ``Kind namespace/name`` (for display only: it is not unique)."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else (
            f"{self.kind} {self.name}"
        )

    def locate(self, path: FieldPath | None) -> SourceLocation:
        """Location of the deepest declared prefix of ``path``, or of the resource."""
        if path:
            for end in range(len(path), 0, -1):
                loc = self.marks.get(path[:end])
                if loc is not None:
                    return loc
        return self.location


@dataclass(frozen=True)
class Control:
    """A control of a security standard that a policy maps to."""

    standard: str
    id: str
    title: str = ""


@dataclass(frozen=True)
class Suppression:
    """Why a finding is not counted: an accepted risk."""

    kind: str
    justification: str
    owner: str = ""
    expires: str = ""
    source: str = ""
    approver: str = ""   # who approved the acceptance, when it names one
    ticket: str = ""     # the change or risk ticket it names


@dataclass(frozen=True)
class Finding:
    """One result: a policy violation, a drift, an input problem or an acceptance problem."""

    rule_id: str
    category: str
    severity: Severity
    message: str
    location: SourceLocation
    resource: str = ""
    field_path: FieldPath = ()
    controls: tuple[Control, ...] = ()
    pack: str = ""
    cluster: str = ""
    suppression: Suppression | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)
    ref: ObjectRef | None = None  # the object the finding is about; None: a file or a run
    # newness against the evaluated base, in SARIF's words: "new", "unchanged", "absent"
    # (in ``Report.fixed``: the base had it, the head does not); "" when no base was evaluated
    baseline: str = ""
    # the objects one finding at one source location stands for, when it is more than ``ref``
    # (one base line rendered by several overlays): chosen by the assemble stage for the
    # formats that show one finding per location; () otherwise
    affects: tuple[ObjectRef, ...] = field(default=(), compare=False)

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes this finding the same finding in another run (the base, a later commit).

        The rule, the cluster, the object (its ``ObjectRef`` without the served version; a
        finding about a file and no object: the file's path), the field path, and the message
        with any file position or line number taken out, which is what tells apart two
        findings of one rule on one object (two containers, two images). Never a line or a
        column: a finding that only moved is the same finding. The delta against the base
        and the SARIF fingerprints are both built on this one identity.
        """
        ref = self.ref
        what = (("object", ref.group, ref.kind, ref.namespace, ref.name) if ref is not None
                else ("file", self.location.path))
        cluster = self.cluster or (ref.cluster if ref is not None else "")
        return (self.rule_id, cluster, *what, "/".join(str(p) for p in self.field_path),
                _positionless(self.message))

    def in_cluster(self, cluster: str) -> Finding:
        """The finding (and its object reference) attributed to ``cluster``."""
        if cluster == self.cluster and (self.ref is None or self.ref.cluster == cluster):
            return self
        return replace(self, cluster=cluster,
                       ref=self.ref.in_cluster(cluster) if self.ref is not None else None)

    def sort_key(self) -> tuple[Any, ...]:
        """Deterministic order: by file, line, rule and message."""
        return (
            self.cluster,
            self.location.path,
            self.location.line,
            self.location.column,
            self.rule_id,
            self.resource,
            self.message,
        )


@dataclass(frozen=True)
class Rule:
    """Metadata of a rule that can produce findings (a policy, or a built-in check)."""

    id: str
    title: str
    severity: Severity
    description: str = ""
    help: str = ""
    pack: str = ""
    controls: tuple[Control, ...] = ()
    help_uri: str = ""


@dataclass(frozen=True, order=True)
class Coverage:
    """One entry of the coverage ledger: what a load rendered, followed or could not check.

    ``state`` is ``rendered`` (Kustomize root, Helm release, Argo CD app turned into objects),
    ``followed`` (a Flux sync, an Argo CD app-of-apps link, a source mapped to this repository)
    or ``not-checked`` (a remote chart not allowed, a source outside this repository, a plugin).
    ``kind`` names the input (``kustomize``, ``helm``, ``flux``, ``argocd``, ``file``...),
    ``what`` identifies it for a person, ``path`` is where it is declared (relative to the
    root), ``reason`` says why for ``not-checked``, and ``produced`` counts the objects it gave.
    Every ``not-checked`` entry is also reported as an ``input.not-checked`` finding.
    """

    state: str
    kind: str
    what: str
    path: str
    line: int = 1
    reason: str = ""
    produced: int = 0


@dataclass(frozen=True, order=True)
class Exemption:
    """One policy's namespace exemption in one cluster.

    ``source`` says where the list was set: ``pack <name>`` (the built-in Constraint's own
    list), ``file:line`` of ``.gitops-checker.yaml``, or ``repository <file:line>`` (a
    Constraint of the repository's policy folder). ``skipped`` counts the cluster's objects
    of a kind the policy checks that sit in an exempt namespace (a Namespace counts as in
    itself, as Gatekeeper matches it).
    """

    cluster: str
    policy: str
    namespaces: tuple[str, ...]
    source: str
    skipped: int = 0


@dataclass(frozen=True, order=True)
class PolicyRecord:
    """One policy as it ran in one cluster, for the evidence record.

    ``digest`` is ``sha256:`` of the canonical JSON of the template and the effective
    constraint (after config overrides), so two runs with the same digest ran the same policy.
    """

    cluster: str
    policy: str
    source: str        # "pack:<name>" or "repository"
    constraint: str    # Kind/name
    enforcement: str   # the constraint's enforcementAction
    severity: str
    digest: str
    location: str = ""  # where a repository policy's constraint is (path:line)


@dataclass(frozen=True, order=True)
class PolicyChange:
    """How one policy of one cluster differs between the base's and the change's policy set.

    ``change`` is ``added``, ``removed`` or ``changed`` (the template or the effective
    constraint: another content digest); ``enforcement`` and ``severity`` are the values
    before and after (``"dryrun -> deny"`` is read from them; equal when unchanged).
    """

    cluster: str
    policy: str
    change: str
    constraint: str
    enforcement_before: str = ""
    enforcement_after: str = ""
    severity_before: str = ""
    severity_after: str = ""
    location: str = ""  # where the change's constraint is (path:line), for a repository one


@dataclass(frozen=True, order=True)
class ImpactEntry:
    """One object whose verdict the pull request's policy change alters, in one cluster.

    ``against`` is ``desired`` (the manifests of the change) or ``live`` (the cluster's
    snapshot). ``outcome`` is ``fails`` (fails under the change's policies, not under the
    base's), ``passes`` (the reverse), ``enforcement`` (fails under both, with another
    enforcement action or severity: ``dryrun -> deny`` means admission starts refusing it)
    or ``not-checked`` (the change's policy could not be evaluated on it: never a pass).
    ``why`` says which constraint change (or acceptance change) made the difference.
    """

    cluster: str
    against: str
    outcome: str
    policy: str
    resource: str
    location: SourceLocation
    why: str
    message: str = ""
    constraint: str = ""
    severity_before: str = ""
    severity_after: str = ""
    enforcement_before: str = ""
    enforcement_after: str = ""
    ref: ObjectRef | None = None
    field_path: FieldPath = ()


@dataclass(frozen=True)
class Impact:
    """What the pull request's policy change does (the "what-if"), for the report.

    ``base`` names the ref whose policies, packs, overrides, acceptances and cluster config
    were compared with the change's; both sides evaluated the change's manifests, so only the
    policy change shows. ``changes`` lists the policies that differ, ``entries`` the objects
    whose verdict differs, ``live`` the clusters whose snapshot was evaluated too, and
    ``problems`` what the what-if could not evaluate (each is also an entry or a finding).
    """

    base: str
    changes: tuple[PolicyChange, ...] = ()
    entries: tuple[ImpactEntry, ...] = ()
    live: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def applies(self) -> bool:
        """Whether there is anything to show: a policy differs or a verdict does."""
        return bool(self.changes or self.entries or self.problems)


@dataclass(frozen=True)
class Selection:
    """What one part of a limited format holds (a SARIF run): chosen by the assemble stage.

    ``run`` names the part (a cluster, a group of clusters, or ""), ``kept`` are its findings
    in report order, ``left_out`` counts by severity label what the cap (``limit``; 0: none)
    left out, and ``why`` names the limit that did.
    """

    run: str
    kept: tuple[Finding, ...]
    left_out: Mapping[str, int] = field(default_factory=dict)
    limit: int = 0
    clusters: tuple[str, ...] = ()  # the clusters whose findings the part holds
    why: str = ""  # which limit left findings out (empty: none was left out)
    # rule id -> the severity the part's rule descriptor states, where every finding of the
    # rule in the part has that one severity and it is not the rule's (a cluster's override)
    severities: Mapping[str, Severity] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Findings of the part before the cap."""
        return len(self.kept) + sum(self.left_out.values())


@dataclass(frozen=True)
class ClusterPart:
    """What one cluster of a sharded scan gave the run, for ``merge`` to put shards together
    in the order an unsharded run builds them: its packs, Rego engines and tool errors in
    first-use order, and the ids of the rules its policies defined (the last cluster of the
    configuration that defines a rule gives the report its metadata)."""

    name: str
    packs: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shard:
    """A scan of part of the fleet (``--shard I/N`` or ``--cluster NAME``).

    ``clusters`` are every cluster of the configuration, in its order; ``parts`` the
    selected ones, in that order, with what each contributed. ``files`` are the files the
    shard read (an unsharded run counts each file once, however many clusters read it) and
    ``used`` the risk acceptances that accepted a finding here (``path:line:id``: one shard's
    unused acceptance may be another's used one). ``index``/``count``: the shard (0/0 when
    selected by name).
    """

    clusters: tuple[str, ...]
    parts: tuple[ClusterPart, ...]
    files: tuple[str, ...] = ()
    used: tuple[str, ...] = ()
    index: int = 0
    count: int = 0

    @property
    def selected(self) -> tuple[str, ...]:
        """The names of the clusters this shard checked."""
        return tuple(p.name for p in self.parts)


@dataclass(frozen=True)
class Annotations:
    """What the GitHub Action annotates, as the assemble stage chose it.

    GitHub shows at most ``per_kind`` annotations of each kind (error, warning, notice) per
    step and 50 per job; ``kept`` are the findings that fit, in the order they are written
    (new findings on changed lines first, then other new ones, then the rest on changed
    lines, then the others; the most severe first within each), ``left_out`` the active
    findings that did not fit, in the same order. ``base`` is the commit the changed lines
    were read against and ``changed_lines`` how many there are; ``note`` says why they are
    not known when they could not be read in a pull-request run.
    """

    kept: tuple[Finding, ...] = ()
    left_out: tuple[Finding, ...] = ()
    listed: tuple[Finding, ...] = ()  # the first of ``left_out``, for the job summary's table
    on_changed_lines: int = 0  # how many of ``kept`` are on a changed line
    base: str = ""
    changed_lines: int = 0
    note: str = ""
    per_kind: int = 10
    limit: int = 0  # at most this many in all (the max-annotations input, within 50 a job)


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs. Renderers read it; they never filter or recompute."""

    findings: tuple[Finding, ...]
    rules: Mapping[str, Rule]
    resources_checked: int
    files_checked: int
    packs: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    tool_version: str = ""
    errors: tuple[str, ...] = ()
    link_base: str = ""
    sarif_category: str = ""
    group_by: str = "pack"
    fail_on: Severity | None = Severity.ERROR
    drift_summary: Mapping[str, Any] = field(default_factory=dict)  # coverage of a drift run
    coverage: tuple[Coverage, ...] = ()  # what the load rendered, followed, did not check
    engines: tuple[str, ...] = ()  # Rego engines that evaluated: "name version (what)"
    # per limited format ("sarif", "sarif-accepted"): its parts, as the assemble stage chose
    selections: Mapping[str, tuple[Selection, ...]] = field(default_factory=dict)
    # the most rows each table of the Markdown summary shows, as the assemble stage chose to
    # keep it under GitHub's 1 MiB (``assemble.SUMMARY_CAPS``); empty: the default caps
    caps: Mapping[str, int] = field(default_factory=dict)
    exemptions: tuple[Exemption, ...] = ()  # namespaces each policy skipped, per cluster
    policy_records: tuple[PolicyRecord, ...] = ()  # what ran where, with content digests
    # the delta against a base: the evaluated base commit ("" when none) and the findings the
    # base had that the head does not (``baseline == "absent"``); ``findings`` are then each
    # "new" or "unchanged"
    base: str = ""
    fixed: tuple[Finding, ...] = ()
    impact: Impact | None = None  # the policy change's what-if (None: none was evaluated)
    gate: str = "all"  # what the exit code weighs: "all" active findings, or the "new" ones
    shard: Shard | None = None  # a scan of part of the fleet: what ``merge`` needs
    annotations: Annotations | None = None  # what the Action annotates (None: no annotations)

    def fails(self, finding: Finding) -> bool:
        """Whether a finding is at or above the ``--fail-on`` threshold (under ``gate ==
        "new"``: and new, not one the base had too)."""
        if self.gate == "new" and self.base and finding.baseline != NEW:
            return False
        return self.fail_on is not None and finding.severity >= self.fail_on

    @property
    def active(self) -> tuple[Finding, ...]:
        """Findings that count: not suppressed by an accepted risk."""
        return tuple(f for f in self.findings if f.suppression is None)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        """Findings covered by an accepted risk."""
        return tuple(f for f in self.findings if f.suppression is not None)

    @property
    def new(self) -> tuple[Finding, ...]:
        """Active findings the base did not have (all active findings when no base ran)."""
        if not self.base:
            return self.active
        return tuple(f for f in self.active if f.baseline == NEW)

    @property
    def unchanged(self) -> tuple[Finding, ...]:
        """Active findings the base had too (none when no base ran)."""
        return tuple(f for f in self.active if f.baseline == UNCHANGED)

    def counts(self) -> dict[str, int]:
        """Counts of active findings by severity label, every severity present."""
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for f in self.active:
            out[f.severity.label] += 1
        return out
