"""Gatekeeper expansion: ExpansionTemplates turn a workload (a Deployment, a CronJob) into the
resources it will create (a Pod, a Job), which constraints then see with ``source: Generated``.

As Gatekeeper's expansion system (``pkg/expansion``) does, learnt from its code and docs: the
generated object is the workload's ``templateSource`` field with the template's
``generatedGVK``, the workload's namespace, the name ``<workload>-<kind>`` in lower case and an
ownerReference to the workload; mutators are applied to it with source Generated; it is
expanded again (a CronJob's Job into Pods), up to 30 levels; templates that form a cycle are
not used. Violations on a generated object are the workload's, their message prefixed with
``[Implied by <template>]`` and their enforcement action the template's when it sets one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from checker.admit import mutate as mutation
from checker.model import FieldPath, ObjectRef, Resource, SourceLocation
from checker.policy.gatekeeper import ACTIONS

GROUP = "expansion.gatekeeper.sh"
KIND = "ExpansionTemplate"
MAX_DEPTH = 30
MAX_GENERATED = 1000  # generated objects per workload, a bound on hostile template sets
PREFIX = "[Implied by {}]"


class TemplateError(ValueError):
    """An ExpansionTemplate Gatekeeper does not accept."""


class ExpansionError(ValueError):
    """Expanding one object failed: the validating webhook rejects it."""


def is_expansion_template(res: Resource) -> bool:
    """A Gatekeeper ExpansionTemplate."""
    return res.group == GROUP and res.kind == KIND


@dataclass(frozen=True)
class Template:
    """An ExpansionTemplate, validated."""

    name: str
    location: SourceLocation
    applies: frozenset[tuple[str, str, str]]  # (group, version, kind) it expands
    source: tuple[str, ...]                    # templateSource, split at dots
    generated: tuple[str, str, str]            # (group, version, kind) it generates
    enforcement_action: str = ""


def parse_template(res: Resource) -> Template:
    """An ExpansionTemplate from its manifest; TemplateError when Gatekeeper rejects it."""
    name = res.name
    if not name:
        raise TemplateError("ExpansionTemplate has empty name field")
    if len(name) >= 64:
        raise TemplateError("ExpansionTemplate name must be less than 64 characters")
    spec = res.body.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    unknown = sorted(str(k) for k in spec if k not in (
        "applyTo", "templateSource", "generatedGVK", "enforcementAction"))
    if unknown:
        raise TemplateError(f"unknown field(s) {', '.join('spec.' + k for k in unknown)}")
    source = spec.get("templateSource")
    if not source or not isinstance(source, str):
        raise TemplateError(f"ExpansionTemplate {name} has empty source field")
    gvk = spec.get("generatedGVK")
    gvk = gvk if isinstance(gvk, Mapping) else {}
    if not all(isinstance(gvk.get(k) or "", str) for k in ("group", "version", "kind")):
        raise TemplateError(f"ExpansionTemplate {name}: generatedGVK fields must be strings")
    generated = tuple(str(gvk.get(k) or "") for k in ("group", "version", "kind"))
    if not any(generated):
        raise TemplateError(f"ExpansionTemplate {name} has empty generatedGVK field")
    applies: set[tuple[str, str, str]] = set()
    raw = spec.get("applyTo")
    if not raw or not isinstance(raw, list):
        raise TemplateError(f"ExpansionTemplate {name} must specify ApplyTo")
    for entry in raw:
        if not isinstance(entry, Mapping) or not all(
                isinstance(entry.get(k) or [], list)
                and all(isinstance(v, str) for v in entry.get(k) or [])
                for k in ("groups", "versions", "kinds")):
            raise TemplateError(f"ExpansionTemplate {name}: applyTo entries must be "
                                "{groups: [...], versions: [...], kinds: [...]} of strings")
        applies.update((str(g), str(v), str(k)) for g in entry.get("groups") or []
                       for v in entry.get("versions") or [] for k in entry.get("kinds") or [])
    g3 = (generated[0], generated[1], generated[2])
    if g3 in applies:
        raise TemplateError(f"ExpansionTemplate {name} generates GVK {'/'.join(g3)}, but "
                            "also applies to that same GVK")
    action = spec.get("enforcementAction") or ""
    if action and (not isinstance(action, str) or action not in ACTIONS):
        raise TemplateError(f"unknown enforcementAction {action!r} (expected one of: "
                            f"{', '.join(ACTIONS)})")
    return Template(name=name, location=res.location, applies=frozenset(applies),
                    source=tuple(source.split(".")), generated=g3,
                    enforcement_action=str(action))


def cyclic(templates: Sequence[Template]) -> set[str]:
    """Names of templates on a cycle of generated -> expanded kinds (Gatekeeper leaves
    them all out)."""
    edges = {t.name: {u.name for u in templates if t.generated in u.applies} for t in templates}
    out: set[str] = set()
    for start in edges:
        stack, seen = list(edges[start]), set()
        while stack:
            node = stack.pop()
            if node == start:
                out.add(start)
                break
            if node not in seen:
                seen.add(node)
                stack.extend(edges[node])
    return out


@dataclass(frozen=True)
class Generated(Resource):
    """An object Gatekeeper's expansion creates from a workload (``origin``): findings on it
    are reported on the workload, at the lines of its template source."""

    origin: str = ""      # the workload's display, where findings are reported
    template: str = ""    # the ExpansionTemplate that generated it
    action: str = ""      # the template's enforcement action ("" keeps the constraint's)
    described: str = field(default="", compare=False)  # "Pod ns/name" of the object itself
    prefix: FieldPath = ()  # where in the workload its fields are (the template sources)
    origin_ref: ObjectRef | None = field(default=None, compare=False)  # the workload's

    @property
    def display(self) -> str:
        """The workload the generated object stands for (Gatekeeper denies the workload)."""
        return self.origin

    @property
    def ref(self) -> ObjectRef:
        """The workload's identity: its findings, and the acceptances that cover them, are
        the workload's."""
        if self.origin_ref is None:
            return super().ref
        return self.origin_ref.in_cluster(self.cluster)


class _Under(Mapping[FieldPath, SourceLocation]):
    """The marks of a workload under its template source, as the generated object's own."""

    __slots__ = ("_marks", "_prefix")

    def __init__(self, marks: Mapping[FieldPath, SourceLocation], prefix: FieldPath) -> None:
        self._marks = marks
        self._prefix = prefix

    def __getitem__(self, key: FieldPath) -> SourceLocation:
        return self._marks[self._prefix + tuple(key)]

    def __iter__(self) -> Iterator[FieldPath]:
        n = len(self._prefix)
        return (k[n:] for k in self._marks if k[:n] == self._prefix)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def expand_one(res: Resource, template: Template) -> Generated:
    """The object ``template`` generates from ``res``; ExpansionError when it cannot."""
    current: Any = res.body
    for i, part in enumerate(template.source):
        if not isinstance(current, Mapping):
            raise ExpansionError(f"could not extract source field from unstructured: "
                                 f"{'.'.join(template.source[:i])} is not a map")
        if part not in current:
            raise ExpansionError(f"could not find source field {'.'.join(template.source)!r} "
                                 f"in resource {res.name}")
        current = current[part]
    if not isinstance(current, Mapping):
        raise ExpansionError(f"could not extract source field from unstructured: "
                             f"{'.'.join(template.source)} is not a map")
    body: dict[str, Any] = dict(current)  # shallow: mutation copies what it changes
    group, version, kind = template.generated
    body["apiVersion"] = f"{group}/{version}" if group else version
    body["kind"] = kind
    meta = body.get("metadata")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    if res.namespace:
        meta["namespace"] = res.namespace
    name = (res.name + ("-" + kind if kind else "")).lower()
    meta["name"] = name
    owners = meta.get("ownerReferences")
    owners = list(owners) if isinstance(owners, list) else []
    # an OwnerReference without uid serializes "uid": "" (the field has no omitempty)
    ref = {"apiVersion": res.api_version, "kind": res.kind, "name": res.name, "uid": ""}
    if res.api_version and res.kind and res.name and not any(
            isinstance(o, Mapping) and all(o.get(k) == ref[k] for k in ("apiVersion", "kind",
                                                                      "name"))
            for o in owners):
        owners.append(ref)
    meta["ownerReferences"] = owners
    body["metadata"] = meta
    prefix: FieldPath = template.source
    origin = res.origin if isinstance(res, Generated) else res.display
    origin_ref = res.ref
    within = (res.prefix if isinstance(res, Generated) else ()) + prefix
    location = res.locate(prefix)
    described = f"{kind} {res.namespace}/{name}" if res.namespace else f"{kind} {name}"
    return Generated(api_version=str(body["apiVersion"]), kind=kind,
                     namespace=res.namespace, name=name, body=body, location=location,
                     marks=_Under(res.marks, prefix), cluster=res.cluster, origin=origin,
                     template=template.name, action=template.enforcement_action,
                     described=described, prefix=within, origin_ref=origin_ref)


def expand(res: Resource, templates: Sequence[Template],
           mutators: Sequence[mutation.Mutator], namespaces: Mapping[str, Resource],
           namespaced: Callable[[Resource], bool | None] = lambda r: None,
           budget: mutation.Budget | None = None,
           ) -> tuple[list[Generated], list[tuple[Generated, mutation.Outcome]]]:
    """Every object ``res`` expands into (recursively, children first), each mutated with
    source Generated; the mutation outcomes that changed or failed. ExpansionError when
    the webhook would reject ``res``."""
    out: list[Generated] = []
    mutated: list[tuple[Generated, mutation.Outcome]] = []

    def walk(base: Resource, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise ExpansionError(f"maximum recursion depth of {MAX_DEPTH} reached")
        gvk = (base.group, base.version, base.kind)
        level: list[Generated] = []
        for template in templates:
            if gvk not in template.applies:
                continue
            child = expand_one(base, template)
            outcome = mutation.mutate(child, mutators, namespaces, source="Generated",
                                      operation="", namespaced=namespaced(child),
                                      budget=budget)
            if outcome.error:
                raise ExpansionError(f"failed to mutate resultant resource {child.name}: "
                                     f"{outcome.error}")
            if outcome.body is not None:
                child = replace(child, body=outcome.body)
            if outcome.body is not None or outcome.undecided or outcome.external:
                mutated.append((child, outcome))
            level.append(child)
            if len(out) + len(level) > MAX_GENERATED:
                raise ExpansionError(f"more than {MAX_GENERATED} generated objects")
        for child in level:
            walk(child, depth + 1)
        out.extend(level)

    walk(res, 0)
    return out, mutated
