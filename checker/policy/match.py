"""Constraint ``spec.match``, with Gatekeeper's semantics (kinds, scope, namespaces, selectors)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from checker.model import Resource


class MatchError(Exception):
    """The match cannot be decided (for example, a namespaceSelector on an unknown namespace)."""


def wildcard(pattern: str, value: str) -> bool:
    """Gatekeeper's name glob: an optional ``*`` at the start and/or end."""
    if pattern == "*":
        return True
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
        return pattern[1:-1] in value
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


def _labels(body: Mapping[str, Any]) -> dict[str, str]:
    meta = body.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels AND matchExpressions)."""
    if not isinstance(selector, Mapping):
        raise MatchError("label selector must be a mapping")
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise MatchError("matchLabels must be a mapping")
    for key, value in match_labels.items():
        if labels.get(str(key)) != str(value):
            return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise MatchError("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise MatchError("each matchExpressions entry must be a mapping")
        key, op = str(expr.get("key", "")), expr.get("operator")
        raw = expr.get("values") or []
        if not isinstance(raw, list):
            raise MatchError(f"values of the matchExpressions entry for {key!r} must be a list")
        values = [str(v) for v in raw]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise MatchError(f"unknown label selector operator {op!r}")
        if not ok:
            return False
    return True


def is_namespace(res: Resource) -> bool:
    """A core/v1 Namespace."""
    return res.kind == "Namespace" and res.group == ""


NAME_LABEL = "kubernetes.io/metadata.name"


def namespace_labels(ns: Resource) -> dict[str, str]:
    """A Namespace's labels as the API server stores them: its defaulting sets
    ``kubernetes.io/metadata.name`` to the name on every Namespace."""
    return {**_labels(ns.body), NAME_LABEL: ns.name}


def stored_namespace(ns: Resource) -> dict[str, Any]:
    """A Namespace manifest as the API server stores it on create (without server-set
    identity: uid, resourceVersion, creationTimestamp): the name label, the ``kubernetes``
    finalizer and ``status.phase: Active`` are added. This is what Gatekeeper reads from
    its cache for ``input.review.namespaceObject``."""
    body = copy.deepcopy(dict(ns.body))
    meta = body.get("metadata")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    meta["labels"] = namespace_labels(ns)
    body["metadata"] = meta
    spec = body.get("spec")
    spec = dict(spec) if isinstance(spec, Mapping) else {}
    finalizers = spec.get("finalizers")
    finalizers = list(finalizers) if isinstance(finalizers, list) else []
    if "kubernetes" not in finalizers:
        finalizers.append("kubernetes")
    spec["finalizers"] = finalizers
    body["spec"] = spec
    status = body.get("status")
    status = dict(status) if isinstance(status, Mapping) else {}
    status.setdefault("phase", "Active")
    body["status"] = status
    return body


class Matcher:
    """A constraint's ``spec.match``, prepared once and applied to many objects."""

    __slots__ = ("excluded", "included", "kinds", "label_selector", "name", "ns_selector",
                 "scope", "source")

    def __init__(self, match: Mapping[str, Any]) -> None:
        kinds = []
        for entry in match.get("kinds") or []:
            if not isinstance(entry, Mapping):
                continue
            names = entry.get("kinds") or []
            groups = entry.get("apiGroups") or []
            kinds.append((None if not names or "*" in names else frozenset(names),
                          None if not groups or "*" in groups else frozenset(groups)))
        self.kinds = kinds
        self.scope = match.get("scope")
        self.included = [str(p) for p in match.get("namespaces") or []]
        self.excluded = [str(p) for p in match.get("excludedNamespaces") or []]
        self.label_selector = match.get("labelSelector")
        self.ns_selector = match.get("namespaceSelector")
        self.name = str(match.get("name") or "")
        self.source = str(match.get("source") or "All")  # Gatekeeper's default is All

    @property
    def reads_labels(self) -> bool:
        """Whether the object's own labels can change the outcome."""
        return self.label_selector is not None or self.ns_selector is not None

    @property
    def reads_name(self) -> bool:
        """Whether the object's name can change the outcome (beyond a Namespace's own)."""
        return bool(self.name)

    def admits_kind(self, group: str, kind: str) -> bool:
        """The ``kinds`` part of the match alone."""
        return not self.kinds or any(
            (names is None or kind in names) and (groups is None or group in groups)
            for names, groups in self.kinds
        )

    def __call__(self, res: Resource, namespaces: Mapping[str, Resource],
                 source: str = "Original", stored: bool = True) -> bool:
        """Whether ``res`` is in scope; MatchError when that cannot be decided.

        ``source`` is Original for an object as applied (every scanned object) and Generated
        for one that Gatekeeper's expansion creates from it; ``match.source`` (All by
        default) selects which it matches. ``stored``: Namespaces carry the labels the API
        server adds (in a cluster); off, only their own (gator's inventory).
        """
        ns_labels = namespace_labels if stored else (lambda n: _labels(n.body))
        if self.source != "All" and self.source != source:
            return False
        if not self.admits_kind(res.group, res.kind):
            return False
        is_ns = is_namespace(res)
        has_namespace = bool(res.namespace)
        if self.scope == "Cluster" and not (is_ns or not has_namespace):
            return False
        if self.scope == "Namespaced" and not (not is_ns and has_namespace):
            return False
        own_ns = res.name if is_ns else res.namespace
        if self.included and own_ns and not any(wildcard(p, own_ns) for p in self.included):
            return False
        if self.excluded and own_ns and any(wildcard(p, own_ns) for p in self.excluded):
            return False
        if self.label_selector is not None and not selector_matches(
                self.label_selector, ns_labels(res) if is_ns else _labels(res.body)):
            return False
        if self.ns_selector is not None:
            if is_ns:
                if not selector_matches(self.ns_selector, ns_labels(res)):
                    return False
            elif has_namespace:
                ns = namespaces.get(res.namespace)
                if ns is None:
                    raise MatchError(
                        f"namespaceSelector needs Namespace {res.namespace!r}, which is not in "
                        "the scanned manifests"
                    )
                if not selector_matches(self.ns_selector, ns_labels(ns)):
                    return False
        return not (self.name and not wildcard(self.name, res.name))


class MatchIndex:
    """Which of many constraints match each resource, decided once per kind of resource.

    Whether a constraint matches depends only on the object's group, kind, namespace and -
    for constraints with a labelSelector, a namespaceSelector or a name - its labels and
    name; objects that agree on those get the answer computed for the first of them.
    ``namespaces`` (name -> Namespace resource) must not change while the index is used;
    ``stored`` and ``source`` are passed to each Matcher.
    """

    def __init__(self, matchers: Mapping[int, Matcher],
                 namespaces: Mapping[str, Resource], stored: bool = True,
                 source: str = "Original") -> None:
        self._matchers = matchers
        self._namespaces = namespaces
        self._stored = stored
        self._source = source  # Original or Generated, for every object this index sees
        self._by_kind: dict[tuple[str, str], tuple[list[int], bool, bool]] = {}
        self._cache: dict[tuple[Any, ...], tuple[tuple[int, ...],
                                                 tuple[tuple[int, str], ...]]] = {}

    def _kind_entry(self, group: str, kind: str) -> tuple[list[int], bool, bool]:
        entry = self._by_kind.get((group, kind))
        if entry is None:
            candidates = [i for i, m in self._matchers.items() if m.admits_kind(group, kind)]
            entry = (candidates,
                     any(self._matchers[i].reads_labels for i in candidates),
                     any(self._matchers[i].reads_name for i in candidates))
            self._by_kind[(group, kind)] = entry
        return entry

    def candidates(self, group: str, kind: str) -> list[int]:
        """Indexes of the constraints whose ``kinds`` admit objects of this group and kind."""
        return self._kind_entry(group, kind)[0]

    def __call__(self, res: Resource) -> tuple[tuple[int, ...], tuple[tuple[int, str], ...]]:
        """Indexes of the matching constraints, and (index, why) for undecided ones."""
        group, kind = res.group, res.kind
        candidates, by_labels, by_name = self._kind_entry(group, kind)
        if not candidates:
            return (), ()
        is_ns = is_namespace(res)
        key = (group, kind, res.namespace, res.name if by_name or is_ns else None,
               tuple(sorted(_labels(res.body).items())) if by_labels else None)
        cached = self._cache.get(key)
        if cached is None:
            matching: list[int] = []
            undecided: list[tuple[int, str]] = []
            for index in candidates:
                try:
                    if self._matchers[index](res, self._namespaces, source=self._source,
                                             stored=self._stored):
                        matching.append(index)
                except MatchError as err:
                    undecided.append((index, str(err)))
            cached = (tuple(matching), tuple(undecided))
            self._cache[key] = cached
        return cached


def matches(match: Mapping[str, Any], res: Resource,
            namespaces: Mapping[str, Resource]) -> bool:
    """Whether ``res`` is in scope of a constraint with this ``spec.match``."""
    return Matcher(match)(res, namespaces)
