"""Gatekeeper mutation: Assign, AssignMetadata, ModifySet and AssignImage, applied to objects
before their policies are evaluated, as the mutating webhook applies them before validation.

The semantics are Gatekeeper's (``pkg/mutation``), learnt from its code and documentation and
written here: mutators run in the order of their id (group, kind, namespace, name), all of
them again until an iteration changes nothing (at most one iteration more than there are
mutators; otherwise the mutation does not converge and the webhook rejects the object);
mutators whose paths disagree about an object's schema are not applied; ``location`` is
walked as Gatekeeper walks it (missing objects and keyed list elements are created, globs
visit every element), ``pathTests`` gate each level, AssignMetadata only adds labels and
annotations. ``fromMetadata`` takes the object's name or namespace; external data cannot be
had offline, so such a mutator is reported as not checked and left out.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.admit.location import Field, Keyed, LocationError, Node, parse, render
from checker.model import Resource, SourceLocation
from checker.policy.gatekeeper import SOURCES
from checker.policy.match import (
    MatchError,
    is_namespace,
    namespace_labels,
    selector_matches,
    wildcard,
)

GROUP = "mutations.gatekeeper.sh"
KINDS = ("Assign", "AssignImage", "AssignMetadata", "ModifySet")
OPERATIONS = ("CREATE", "UPDATE")  # what Gatekeeper's mutating webhook handles
MAX_CHANGES_SHOWN = 8
# mutator applications per run (objects x iterations x matching mutators): a bound on the
# work a hostile set of mutators can cause; beyond it objects are not mutated (an error)
MAX_STEPS = 2_000_000


class Budget:
    """What is left of MAX_STEPS for one run."""

    def __init__(self, steps: int = MAX_STEPS) -> None:
        self.left = steps

_MATCH_KEYS = {"kinds", "scope", "namespaces", "excludedNamespaces", "labelSelector",
               "namespaceSelector", "name", "source"}
_ASSIGN_KEYS = {"value", "fromMetadata", "externalData"}
_SPEC_KEYS = {
    "Assign": {"applyTo", "match", "location", "parameters"},
    "AssignMetadata": {"match", "location", "parameters"},
    "ModifySet": {"applyTo", "match", "location", "parameters"},
    "AssignImage": {"applyTo", "match", "location", "parameters"},
}
_PARAMETER_KEYS = {
    "Assign": {"pathTests", "assign"},
    "AssignMetadata": {"assign"},
    "ModifySet": {"pathTests", "operation", "values"},
    "AssignImage": {"pathTests", "assignDomain", "assignPath", "assignTag"},
}
# the schema node a mutator's last field holds (Gatekeeper's TerminalType)
_TERMINAL = {"Assign": "Unknown", "ModifySet": "Set", "AssignImage": "String"}

_DOMAIN = re.compile(r"(^\w[\w\-_]*\.[\w\-_\.]*[\w](:\d+)?$)|(^localhost(:\d+)?$)", re.ASCII)
_PATH = re.compile(r"[a-z0-9]+(?:(?:(?:[._/]|__|[-]*)[a-z0-9]+)+)?")
_TAG = re.compile(r"(^:[\w][\w.-]{0,127}$)|(^@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*"
                  r"[:][0-9A-Fa-f]{32,}$)", re.ASCII)


class MutatorError(ValueError):
    """A mutator Gatekeeper does not accept (its controller reports it and never runs it)."""


class MutationError(ValueError):
    """Mutating one object failed: the mutating webhook rejects the request."""


def is_mutator(res: Resource) -> bool:
    """A Gatekeeper mutator (any version of mutations.gatekeeper.sh)."""
    return res.group == GROUP and res.kind in KINDS


def same(a: Any, b: Any) -> bool:
    """Equality as Go compares decoded JSON: 1, 1.0 and true are three different values."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass(frozen=True)
class ApplyTo:
    """One ``applyTo`` entry: exact groups, versions, kinds and the operations it mutates."""

    groups: tuple[str, ...]
    versions: tuple[str, ...]
    kinds: tuple[str, ...]
    operations: tuple[str, ...]

    def admits(self, group: str, version: str, kind: str, operation: str) -> bool:
        """Gatekeeper's AppliesGVKAndOperation for this entry."""
        if group not in self.groups or version not in self.versions or kind not in self.kinds:
            return False
        every = not self.operations or "*" in self.operations
        if not operation:  # expansion, audit: only mutators of every supported operation
            return every or all(op in self.operations for op in OPERATIONS)
        if operation not in OPERATIONS:
            return False
        return every or operation in self.operations


@dataclass
class Mutator:
    """One mutator, validated as Gatekeeper validates it."""

    kind: str
    name: str
    namespace: str
    location: SourceLocation
    path: tuple[Node, ...]
    tests: dict[int, str]          # depth -> MustExist / MustNotExist
    apply_to: tuple[ApplyTo, ...]  # empty for AssignMetadata
    match: Mapping[str, Any]
    setter: Callable[[dict[str, Any], str, Resource], None]
    keyed_value: Any = None        # the value a keyed-list terminal assigns (Assign only)
    keyed_ok: bool = False
    terminal: str = "Unknown"
    must_terminate: bool = False
    external: str = ""             # the external data provider, when it assigns from one
    notes: list[str] = field(default_factory=list)  # fields Gatekeeper does not support

    @property
    def label(self) -> str:
        """``Kind/name`` (``Kind/namespace/name`` for a namespaced one)."""
        return f"{self.kind}/{self.namespace + '/' if self.namespace else ''}{self.name}"

    @property
    def order(self) -> tuple[str, str, str, str]:
        """Gatekeeper's mutator id, by which mutators are ordered."""
        return (GROUP, self.kind, self.namespace, self.name)

    def bindings(self) -> set[tuple[str, str, str, str]]:
        """(group, version, kind, operation) the mutator implies a schema for."""
        out: set[tuple[str, str, str, str]] = set()
        for a in self.apply_to:
            ops = OPERATIONS if not a.operations or "*" in a.operations else a.operations
            for g in a.groups:
                for v in a.versions:
                    for k in a.kinds:
                        out.update((g, v, k, op) for op in ops if op in OPERATIONS)
        return out

    def matches(self, res: Resource, namespaces: Mapping[str, Resource], source: str,
                operation: str, namespaced: bool | None = None) -> bool:
        """Whether the mutator applies; MatchError when that cannot be decided.

        ``namespaced`` is the scope of the object's kind (None: unknown). An object of a
        namespaced (or unknown) kind without a namespace is matched as gator expand matches
        it: with an empty Namespace, so that ``scope: Namespaced`` selects it.
        """
        if self.kind != "AssignMetadata" and not any(
                a.admits(res.group, res.version, res.kind, operation) for a in self.apply_to):
            return False
        return mutation_match(self.match, res, namespaces, source, namespaced is not False)

    def mutate(self, body: dict[str, Any], res: Resource) -> dict[str, Any]:
        """``body`` with the mutator applied (``body`` itself is not modified; unchanged
        parts are shared); MutationError when Gatekeeper's mutation fails."""
        mutated, new = _Walk(self, res).object(body, 0)
        return new if mutated and isinstance(new, dict) else body


def _labels(body: Mapping[str, Any]) -> dict[str, str]:
    meta = body.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def mutation_match(match: Mapping[str, Any], res: Resource,
                   namespaces: Mapping[str, Resource], source: str,
                   namespaced_kind: bool = True) -> bool:
    """A mutator's ``spec.match`` as Gatekeeper's mutation matcher reads it (kinds, scope,
    namespaces, excludedNamespaces, labelSelector, namespaceSelector, name, source).

    The object's Namespace is the manifest of its namespace (labels as stored), an empty
    Namespace for an object of a namespaced kind without a namespace (as gator expand
    passes), none for a cluster-scoped object. MatchError when a namespaceSelector needs a
    Namespace that is not among the manifests."""
    is_ns = is_namespace(res)
    ns_name: str | None = None  # the Namespace object's name; None: no Namespace object
    found: Resource | None = None
    if res.namespace:
        found = namespaces.get(res.namespace)
        if found is not None or res.namespace == "default":
            ns_name = res.namespace
    elif not is_ns and namespaced_kind:
        ns_name = ""
    kinds = match.get("kinds") or []
    if kinds and not any(
            isinstance(k, Mapping)
            and (not k.get("kinds") or "*" in k["kinds"] or res.kind in k["kinds"])
            and (not k.get("apiGroups") or "*" in k["apiGroups"] or res.group in k["apiGroups"])
            for k in kinds):
        return False
    has_namespace = bool(res.namespace) or ns_name is not None
    scope = match.get("scope")
    if scope == "Cluster" and not (is_ns or not has_namespace):
        return False
    if scope == "Namespaced" and not (not is_ns and has_namespace):
        return False
    own = res.name if is_ns else (ns_name if ns_name is not None else res.namespace)
    decided = is_ns or ns_name is not None or bool(res.namespace)
    included = [str(p) for p in match.get("namespaces") or []]
    if included and decided and not any(wildcard(p, own) for p in included):
        return False
    excluded = [str(p) for p in match.get("excludedNamespaces") or []]
    if excluded and decided and any(wildcard(p, own) for p in excluded):
        return False
    if match.get("labelSelector") is not None and not selector_matches(
            match["labelSelector"], _labels(res.body)):
        return False
    selector = match.get("namespaceSelector")
    if selector is not None:
        if is_ns:
            if not selector_matches(selector, _labels(res.body)):
                return False
        elif ns_name is not None:
            ns_labels = (namespace_labels(found) if found is not None else
                         {"kubernetes.io/metadata.name": ns_name} if ns_name else {})
            if not selector_matches(selector, ns_labels):
                return False
        elif res.namespace:
            raise MatchError(f"namespaceSelector needs Namespace {res.namespace!r}, which is "
                             "not in the scanned manifests")
    name = str(match.get("name") or "")
    if name:
        meta = res.body.get("metadata")
        generate = meta.get("generateName") if isinstance(meta, Mapping) else None
        by_prefix = isinstance(generate, str) and (
            generate.startswith(name[:-1]) if name.endswith("*") and not name.startswith("*")
            else name.endswith("*") and len(name) > 1 and name.strip("*") in generate)
        if not (wildcard(name, res.name) or by_prefix):
            return False
    wanted = str(match.get("source") or "All")
    return wanted == "All" or wanted == source


class _Walk:
    """Gatekeeper's ``core.Mutate``: walk the location, creating what is missing.

    Copy on write: every mapping and list on the way is copied before it changes, so the
    object given is never modified and unchanged parts are shared with the result (which
    makes comparing before and after cheap)."""

    def __init__(self, mutator: Mutator, res: Resource) -> None:
        self.m = mutator
        self.res = res
        self.last = len(mutator.path) - 1

    def exists_ok(self, depth: int) -> bool:
        return self.m.tests.get(depth, "MustExist") == "MustExist"

    def missing_ok(self, depth: int) -> bool:
        return self.m.tests.get(depth, "MustNotExist") == "MustNotExist"

    def object(self, current: Any, depth: int) -> tuple[bool, Any]:
        node = self.m.path[depth]
        if isinstance(node, Keyed):
            return self.keyed(current, node, depth)
        if not isinstance(current, dict):
            raise MutationError(f"mismatch between path entry (type: object) and received "
                                f"object (type: {_go_type(current)}) at {node.name!r}")
        exists = node.name in current
        if exists and not self.exists_ok(depth):
            return False, None
        if not exists and not self.missing_ok(depth):
            return False, None
        if depth == self.last:
            current = dict(current)
            self.m.setter(current, node.name, self.res)
            return True, current
        nxt = current[node.name] if exists else self.create(depth)
        mutated, nxt = self.object(nxt, depth + 1)
        if mutated:
            current = {**current, node.name: nxt}
        return mutated, current

    def keyed(self, current: Any, node: Keyed, depth: int) -> tuple[bool, Any]:
        if not isinstance(current, list):
            raise MutationError(f"mismatch between path entry (type: List) and received "
                                f"object (type: {_go_type(current)}) at [{node.key}]")
        items = list(current)
        if depth == self.last:
            return self.set_element(items, node, depth)
        if node.glob and not self.exists_ok(depth):
            return False, None
        mutated = found = False
        for i, item in enumerate(current):
            if node.glob or (isinstance(item, dict) and node.key in item
                             and same(item[node.key], node.value)):
                if not node.glob and not self.exists_ok(depth):
                    return False, None
                changed, new = self.object(item, depth + 1)
                if changed:
                    items[i] = new
                mutated, found = mutated or changed, True
        if not node.glob and not found:
            if not self.missing_ok(depth):
                return False, None
            changed, new = self.object(self.create(depth), depth + 1)
            if changed:
                items.append(new)
            mutated = mutated or changed
        return mutated, items

    def set_element(self, items: list[Any], node: Keyed, depth: int) -> tuple[bool, Any]:
        if not self.m.keyed_ok:
            raise MutationError("cannot set a keyed list element with this mutator")
        value = self.m.keyed_value
        if not isinstance(value, dict):
            raise MutationError(f"assign.value for keyed list is not an object: {value!r}")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise MutationError(f"cast error, unable to cast {_go_type(item)} to "
                                    "map[string]interface{}")
            if node.key in item and same(item[node.key], node.value):
                if node.key not in value or not same(value[node.key], node.value):
                    raise MutationError("key value of replaced object must not change")
                if not self.exists_ok(depth):
                    return False, None
                items[i] = copy.deepcopy(value)
                return True, items
        if not self.missing_ok(depth):
            return False, None
        return True, [*items, copy.deepcopy(value)]

    def create(self, depth: int) -> Any:
        node, nxt = self.m.path[depth], self.m.path[depth + 1]
        made: Any = [] if isinstance(nxt, Keyed) else {}
        if isinstance(node, Keyed):
            if not isinstance(made, dict):
                raise MutationError("two consecutive list path entries not allowed")
            if node.value is None:
                raise MutationError("list entry has no key value")
            made[node.key] = node.value
        return made


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "<nil>"
    return "int64" if isinstance(value, int) else "float64"


# --- parsing -------------------------------------------------------------------------------


def _unknown(data: Any, known: set[str], where: str) -> list[str]:
    if not isinstance(data, Mapping):
        return []
    return [f"{where}.{k}" for k in sorted(map(str, data)) if k not in known]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MutatorError(f"{where} must be a list of strings")
    return tuple(value)


def _apply_to(kind: str, name: str, spec: Mapping[str, Any]) -> tuple[ApplyTo, ...]:
    raw = spec.get("applyTo")
    if not raw:
        raise MutatorError(f"applyTo required for {kind} mutator {name}")
    if not isinstance(raw, list):
        raise MutatorError("spec.applyTo must be a list")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise MutatorError(f"spec.applyTo[{i}] must be a mapping")
        a = ApplyTo(_strings(entry.get("groups"), f"applyTo[{i}].groups"),
                    _strings(entry.get("versions"), f"applyTo[{i}].versions"),
                    _strings(entry.get("kinds"), f"applyTo[{i}].kinds"),
                    _strings(entry.get("operations"), f"applyTo[{i}].operations"))
        if not a.groups or not a.versions or not a.kinds:
            raise MutatorError(f"invalid applyTo for {kind} mutator {name}, all of group, "
                               "version and kind must be specified")
        if len(set(a.operations)) != len(a.operations):
            raise MutatorError(f"duplicate operation in applyTo[{i}].operations")
        for op in a.operations:
            if op not in (*OPERATIONS, "*"):
                raise MutatorError(f"invalid operation {op!r} in applyTo[{i}].operations: "
                                   "must be one of CREATE, UPDATE, *")
        if "*" in a.operations and len(a.operations) > 1:
            raise MutatorError(f'wildcard "*" in applyTo[{i}].operations must not be '
                               "combined with other operations")
        out.append(a)
    return tuple(out)


def _tests(path: tuple[Node, ...], raw: Any) -> dict[int, str]:
    """pathTests as Gatekeeper's tester reads them (each a prefix of the location)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise MutatorError("parameters.pathTests must be a list")
    tests: list[tuple[tuple[Node, ...], str]] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise MutatorError("parameters.pathTests entries must be mappings")
        try:
            sub = parse(str(entry.get("subPath", "")))
        except LocationError as err:
            raise MutatorError(f"problem parsing sub path `{entry.get('subPath')}`: "
                               f"{err}") from err
        condition = entry.get("condition")
        if condition not in ("MustExist", "MustNotExist"):
            raise MutatorError(f"{condition} is not a valid path test condition")
        if path[:len(sub)] != sub:
            raise MutatorError(f"all subpaths must be a prefix of the `location` value of the "
                               f"mutation: subpath {render(sub)!r} is not a prefix of "
                               f"location {render(path)!r}")
        tests.append((sub, condition))
    by_depth: dict[int, str] = {}
    lowest_not, highest_must = 2 ** 31 - 1, 0
    for i, (sub, condition) in enumerate(tests):
        by_depth[len(sub) - 1] = condition
        if condition == "MustNotExist" and i < lowest_not:
            lowest_not = i
        elif condition == "MustExist" and i > highest_must:
            highest_must = i
    for sub, condition in tests:
        if by_depth[len(sub) - 1] != condition:
            raise MutatorError(f"conflicting path test conditions: path {render(sub)!r} is "
                               "marked both MustExist and MustNotExist")
    if highest_must > lowest_not:
        raise MutatorError("conflicting path test conditions: a path is marked MustExist "
                           "but a parent MustNotExist")
    return by_depth


def _key_not_changed(path: tuple[Node, ...]) -> None:
    if len(path) < 2 or not isinstance(path[-2], Keyed):
        return
    if isinstance(path[-1], Keyed):
        raise MutatorError("invalid path format: child of a list can't be a list")
    if path[-1].name == path[-2].key:
        raise MutatorError("invalid path format: changing the item key is not allowed")


def _string_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _selector_problem(selector: Any) -> str:
    """Why a LabelSelector is malformed (the API server's schema), or ''."""
    if selector is None:
        return ""
    if not isinstance(selector, Mapping):
        return "must be a mapping"
    labels = selector.get("matchLabels")
    if labels is not None and not (isinstance(labels, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        return "matchLabels must map strings to strings"
    exprs = selector.get("matchExpressions")
    if exprs is None:
        return ""
    if not isinstance(exprs, list):
        return "matchExpressions must be a list"
    for e in exprs:
        if not (isinstance(e, Mapping) and isinstance(e.get("key"), str)
                and e.get("operator") in ("In", "NotIn", "Exists", "DoesNotExist")
                and _string_list(e.get("values"))):
            return ("matchExpressions entries need a key, an operator (In, NotIn, Exists, "
                    "DoesNotExist) and a list of string values")
    return ""


def _check_match(match: Mapping[str, Any]) -> None:
    """``spec.match`` shaped as the mutator CRDs' schema requires; MutatorError otherwise."""
    kinds = match.get("kinds")
    if kinds is not None and not (isinstance(kinds, list) and all(
            isinstance(k, Mapping) and _string_list(k.get("apiGroups"))
            and _string_list(k.get("kinds")) for k in kinds)):
        raise MutatorError("spec.match.kinds must be a list of {apiGroups: [...], kinds: [...]}")
    if match.get("scope") not in (None, "*", "Cluster", "Namespaced"):
        raise MutatorError(f"spec.match.scope {match.get('scope')!r} must be Cluster, "
                           "Namespaced or *")
    for key in ("namespaces", "excludedNamespaces"):
        if not _string_list(match.get(key)):
            raise MutatorError(f"spec.match.{key} must be a list of strings")
    for key in ("labelSelector", "namespaceSelector"):
        problem = _selector_problem(match.get(key))
        if problem:
            raise MutatorError(f"spec.match.{key}: {problem}")
    if match.get("name") is not None and not isinstance(match.get("name"), str):
        raise MutatorError("spec.match.name must be a string")


def _assign_field(raw: Any, kind: str, name: str) -> tuple[str, Any]:
    """(``value`` | ``fromMetadata`` | ``externalData``, its argument), validated."""
    if not isinstance(raw, Mapping):
        raise MutatorError("assign must set one of `externalData`, `value` or `fromMetadata`")
    present = [k for k in ("value", "fromMetadata", "externalData") if raw.get(k) is not None]
    if not present:
        raise MutatorError("assign must set one of `externalData`, `value` or `fromMetadata`")
    if len(present) > 1:
        raise MutatorError("assign must only set one of `externalData`, `value` or "
                           "`fromMetadata`")
    which = present[0]
    arg = raw[which]
    if which == "fromMetadata":
        fieldname = arg.get("field") if isinstance(arg, Mapping) else None
        if fieldname not in ("namespace", "name"):
            raise MutatorError(f"field {fieldname} is not recognized")
    if which == "externalData":
        provider = arg.get("provider") if isinstance(arg, Mapping) else None
        if not provider:
            raise MutatorError("externalData.provider is required")
        if kind == "AssignMetadata" and arg.get("dataSource", "ValueAtLocation") != "Username":
            raise MutatorError(f"only username data source is supported for assignmetadata "
                               f"{name}")
    return which, arg


def _image_parts(domain: str, path: str, tag: str) -> None:
    if not domain and not path and not tag:
        raise MutatorError("at least one of [assignDomain, assignPath, assignTag] must be set")
    if domain:
        if not _DOMAIN.search(domain):
            raise MutatorError(f"assignDomain {domain!r} must be a valid domain")
        if split_domain(domain + "/") != (domain, ""):
            raise MutatorError(f"domain {domain!r} could not be recognized as a valid domain")
    if path:
        found = _PATH.search(path)
        if found is None or found.group(0) != path:
            raise MutatorError(f"assignPath {path!r} is not a valid image path")
    if tag:
        if not _TAG.search(tag):
            raise MutatorError(f"assignTag {tag!r} must be a valid tag (':tag') or digest "
                               "('@sha256:...')")
        if split_tag(tag) != ("", tag):
            raise MutatorError(f"tag {tag!r} could not be recognized as a valid tag or digest")
    if not domain and split_domain(path)[0]:
        raise MutatorError(f"assignPath {path!r} could be interpreted as a domain: set "
                           "assignDomain too")


def split_domain(name: str) -> tuple[str, str]:
    """An image reference's domain and the rest, as Gatekeeper's AssignImage splits it."""
    i = name.find("/")
    if i == -1 or (not any(c in name[:i] for c in ".:") and name[:i] != "localhost"):
        return "", name
    return name[:i], name[i + 1:]


def split_tag(rest: str) -> tuple[str, str]:
    """The path and the ``:tag`` / ``@digest`` of an image reference without its domain."""
    cut = [i for i in (rest.find(":"), rest.find("@")) if i > -1]
    if not cut:
        return rest, ""
    return rest[:min(cut)], rest[min(cut):]


def mutate_image(domain: str, path: str, tag: str, ref: str) -> str:
    """``ref`` with the parts that are set replaced."""
    old_domain, rest = split_domain(ref)
    old_path, old_tag = split_tag(rest)
    domain, path, tag = domain or old_domain, path or old_path, tag or old_tag
    return (domain + "/" if domain else "") + path + tag


def parse_mutator(res: Resource) -> Mutator:
    """A mutator from its manifest; MutatorError when Gatekeeper would not accept it."""
    kind, name = res.kind, res.name
    if len(name) > 63:
        raise MutatorError("name must be 63 characters or fewer")
    spec = res.body.get("spec")
    if not isinstance(spec, Mapping):
        raise MutatorError("spec must be a mapping")
    params = spec.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise MutatorError("spec.parameters must be a mapping")
    match = spec.get("match") or {}
    if not isinstance(match, Mapping):
        raise MutatorError("spec.match must be a mapping")
    notes = _unknown(spec, _SPEC_KEYS[kind], "spec")
    notes += _unknown(match, _MATCH_KEYS, "spec.match")
    notes += _unknown(params, _PARAMETER_KEYS[kind], "spec.parameters")
    if isinstance(params.get("assign"), Mapping):
        notes += _unknown(params["assign"], _ASSIGN_KEYS, "spec.parameters.assign")
    _check_match(match)
    source = match.get("source")
    if source is not None and source not in SOURCES:
        raise MutatorError(f"invalid source field {source!r} (expected one of: "
                           f"{', '.join(SOURCES)})")
    try:
        path = parse(str(spec.get("location") or ""))
    except LocationError as err:
        raise MutatorError(f"invalid location format `{spec.get('location')}`: {err}") from err
    if not path:
        raise MutatorError("empty location")
    metadata_root = path[0] == Field("metadata")
    apply_to: tuple[ApplyTo, ...] = ()
    external = ""
    keyed_value: Any = None
    keyed_ok = False
    setter: Callable[[dict[str, Any], str, Resource], None]
    if kind == "AssignMetadata":
        if not (len(path) == 3 and all(isinstance(n, Field) for n in path) and metadata_root
                and path[1] in (Field("labels"), Field("annotations"))):
            raise MutatorError(f"invalid location for assignmetadata {name}: "
                               f"{spec.get('location')}")
        which, arg = _assign_field(params.get("assign"), kind, name)
        if which == "value" and not isinstance(arg, str):
            raise MutatorError("spec.parameters.assign.value field must be a string for "
                               f"AssignMetadata {name!r}")
        tests = {2: "MustNotExist"}  # labels and annotations are only added
        external = arg.get("provider", "") if which == "externalData" else ""
        setter = _assigner(which, arg)
    else:
        if metadata_root:
            raise MutatorError(f"{kind.lower()} {name} can't change metadata")
        apply_to = _apply_to(kind, name, spec)
        tests = _tests(path, params.get("pathTests"))
        if kind == "Assign":
            _key_not_changed(path)
            which, arg = _assign_field(params.get("assign"), kind, name)
            if isinstance(path[-1], Keyed):
                if which != "value":
                    raise MutatorError("cannot assign a metadata field or external data to a "
                                       "list")
                if path[-1].glob:
                    raise MutatorError("can't append to a globbed list")
                if not isinstance(arg, Mapping):
                    raise MutatorError(f"invalid value: `{arg!r}`, only objects can be added "
                                       "to keyed lists")
                if not same(arg.get(path[-1].key), path[-1].value):
                    raise MutatorError(f"adding object to list with different key "
                                       f"{path[-1].key}: list key {path[-1].value!r}, object "
                                       f"key {arg.get(path[-1].key)!r}")
                keyed_value, keyed_ok = arg, True
            external = arg.get("provider", "") if which == "externalData" else ""
            setter = _assigner(which, arg)
        elif kind == "ModifySet":
            if isinstance(path[-1], Keyed):
                raise MutatorError("final node in a modifyset location cannot be a keyed list")
            operation = params.get("operation", "merge")
            if operation not in ("merge", "prune"):
                raise MutatorError(f"unrecognized operation for modifyset: {operation}")
            values = params.get("values") or {}
            from_list = values.get("fromList") if isinstance(values, Mapping) else None
            if from_list is not None and not isinstance(from_list, list):
                raise MutatorError("spec.parameters.values.fromList must be a list")
            setter = _set_modifier(str(operation), list(from_list or []))
        else:  # AssignImage
            if isinstance(path[-1], Keyed):
                raise MutatorError(f"assignImage {name} cannot have a list as its final node")
            _key_not_changed(path)
            parts = [params.get(k) or "" for k in ("assignDomain", "assignPath", "assignTag")]
            if not all(isinstance(p, str) for p in parts):
                raise MutatorError("assignDomain, assignPath and assignTag must be strings")
            _image_parts(*parts)
            setter = _image_setter(*parts)
    return Mutator(kind=kind, name=name, namespace=res.namespace, location=res.location,
                   path=path, tests=tests, apply_to=apply_to, match=match,
                   setter=setter, keyed_value=keyed_value, keyed_ok=keyed_ok,
                   terminal=_TERMINAL.get(kind, "Unknown"),
                   must_terminate=kind == "AssignImage" or bool(external),
                   external=str(external), notes=notes)


def _assigner(which: str, arg: Any) -> Callable[[dict[str, Any], str, Resource], None]:
    def assign(obj: dict[str, Any], key: str, res: Resource) -> None:
        if which == "fromMetadata":
            obj[key] = res.namespace if arg["field"] == "namespace" else res.name
        else:
            obj[key] = copy.deepcopy(arg)
    return assign


def _set_modifier(operation: str, values: list[Any],
                  ) -> Callable[[dict[str, Any], str, Resource], None]:
    def modify(obj: dict[str, Any], key: str, res: Resource) -> None:
        if key not in obj:
            if operation == "merge":
                obj[key] = copy.deepcopy(values)
            return
        current = obj[key]
        if not isinstance(current, list):
            raise MutationError(f"{current!r} is not a list of values, cannot treat it as a "
                                "set")
        if operation == "merge":
            obj[key] = [*current, *(copy.deepcopy(v) for i, v in enumerate(values)
                                    if not any(same(v, e) for e in current)
                                    and not any(same(v, w) for w in values[:i]))]
        else:
            obj[key] = [e for e in current if not any(same(v, e) for v in values)]
    return modify


def _image_setter(domain: str, path: str, tag: str,
                  ) -> Callable[[dict[str, Any], str, Resource], None]:
    def assign_image(obj: dict[str, Any], key: str, res: Resource) -> None:
        current = obj.get(key, "")
        if not isinstance(current, str):
            raise MutationError(f"expected value at AssignImage location to be a string, got "
                                f"{current!r} of type {_go_type(current)}")
        obj[key] = mutate_image(domain, path, tag, current)
    return assign_image


# --- schema conflicts ----------------------------------------------------------------------


def _key(node: Node) -> str:
    return node.name if isinstance(node, Field) else node.key


def _kind_of(node: Node) -> str:
    return "List" if isinstance(node, Keyed) else "Object"


def conflicts(mutators: Sequence[Mutator]) -> set[int]:
    """Indexes of mutators whose paths disagree about a kind's schema (Gatekeeper's schema
    DB): the same field used as an object by one and a list (or a set, or a string) by
    another, one list keyed by two different fields, or a path going deeper than a field
    another mutator must end at. Gatekeeper applies none of them."""
    trees: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    def fresh() -> dict[str, Any]:
        return {"refs": set(), "children": {}, "term": set()}

    for i, m in enumerate(mutators):
        if m.kind == "AssignMetadata":
            continue
        for binding in m.bindings():
            node = trees.setdefault(binding, fresh())
            node["refs"].add(i)
            for depth, part in enumerate(m.path):
                kind = (_kind_of(m.path[depth + 1]) if depth + 1 < len(m.path)
                        else m.terminal)
                node = node["children"].setdefault(_key(part), {}).setdefault(kind, fresh())
                node["refs"].add(i)
            if m.must_terminate:
                node["term"].add(i)
    out: set[int] = set()

    def walk(node: dict[str, Any]) -> None:
        for by_type in node["children"].values():
            typed = [t for t in by_type if t != "Unknown"]
            terminate = any(c["term"] for c in by_type.values())
            deeper = any(c["children"] for c in by_type.values())
            for t in typed:
                child = by_type[t]
                if len(typed) > 1 or (t == "List" and len(child["children"]) > 1):
                    out.update(child["refs"])
            if terminate and deeper:
                for child in by_type.values():
                    out.update(child["term"])
                    for grand in child["children"].values():
                        for g in grand.values():
                            out.update(g["refs"])
            for child in by_type.values():
                walk(child)

    for tree in trees.values():
        walk(tree)
    return out


# --- the system ----------------------------------------------------------------------------


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths (``spec.containers[0].image``) where ``after`` differs from ``before``."""
    if before is after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in [*before, *(k for k in after if k not in before)]:
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in after or key not in before:
                out.append(where)
            else:
                out += changed_paths(before[key], after[key], where)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True))
                for p in changed_paths(b, a, f"{prefix}[{i}]")]
    return [] if same(before, after) else [prefix or "."]


@dataclass
class Outcome:
    """One object's mutation: the new body (None: unchanged), which mutator changed which
    fields (in order), an error (the webhook rejects the object), undecided matches and
    mutators left out because their value comes from external data."""

    body: dict[str, Any] | None = None
    changes: list[tuple[str, list[str]]] = field(default_factory=list)
    error: str = ""
    undecided: list[tuple[str, str]] = field(default_factory=list)
    external: list[Mutator] = field(default_factory=list)


def mutate(res: Resource, mutators: Sequence[Mutator], namespaces: Mapping[str, Resource],
           source: str = "Original", operation: str = "CREATE",
           namespaced: bool | None = None, budget: Budget | None = None) -> Outcome:
    """Apply ``mutators`` (in Gatekeeper's order, conflicting ones already left out) to
    ``res`` until nothing changes, as Gatekeeper's mutation system does. ``namespaced`` is
    the scope of its kind (None: unknown)."""
    out = Outcome()
    body: dict[str, Any] = res.body if isinstance(res.body, dict) else dict(res.body)
    changes: dict[str, list[str]] = {}
    for iteration in range(1, len(mutators) + 2):
        old = body  # never modified: the walk copies what it changes
        applied = False
        for m in mutators:
            current = res if body is res.body else Resource(
                res.api_version, res.kind, res.namespace, res.name, body, res.location,
                res.marks, res.cluster)
            try:
                if not m.matches(current, namespaces, source, operation, namespaced):
                    continue
            except (TypeError, AttributeError, KeyError, ValueError) as err:
                out.error = (f"mutator {m.label} could not be matched against {res.display} "
                             f"({type(err).__name__}: {err}); the object was not mutated")
                return out
            except MatchError as err:
                if iteration == 1:
                    out.undecided.append((m.label, str(err)))
                continue
            if m.external:
                if iteration == 1:
                    out.external.append(m)
                continue
            if budget is not None:
                budget.left -= 1
                if budget.left < 0:
                    out.error = (f"not mutated: the run exceeded {MAX_STEPS} mutator "
                                 f"applications, so {res.display} and the objects after it "
                                 "were validated without mutation")
                    return out
            before = body
            try:
                body = m.mutate(body, res)
            except (TypeError, AttributeError, KeyError) as err:
                out.error = (f"mutation by {m.label} failed for {res.display} "
                             f"({type(err).__name__}: {err}); the object was not mutated")
                return out
            except MutationError as err:
                out.error = (f"mutation by {m.label} failed for {res.display}: {err}; the "
                             "mutating webhook rejects the object")
                return out
            applied = True
            diff = changed_paths(before, body)
            if diff:
                seen = changes.setdefault(m.label, [])
                seen += [p for p in diff if p not in seen]
        if not applied or same(old, body):
            break
    else:
        out.error = (f"mutation not converging for {res.display} after {len(mutators) + 1} "
                     "iterations: the mutating webhook rejects the object")
        return out
    if not same(body, res.body):
        out.body = body
        out.changes = list(changes.items())
    return out
