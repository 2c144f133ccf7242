"""Constraint ``spec.match``, with Gatekeeper's semantics (kinds, scope, namespaces, selectors)."""

from __future__ import annotations

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
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = str(expr.get("key", "")), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
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


def matches(match: Mapping[str, Any], res: Resource,
            namespaces: Mapping[str, Resource]) -> bool:
    """Whether ``res`` is in scope of a constraint with this ``spec.match``."""
    ns = namespaces.get(res.namespace) if res.namespace else None
    own_ns = res.name if is_namespace(res) else res.namespace

    kinds = match.get("kinds") or []
    if kinds and not any(
        (not k.get("kinds") or "*" in k["kinds"] or res.kind in k["kinds"])
        and (not k.get("apiGroups") or "*" in k["apiGroups"] or res.group in k["apiGroups"])
        for k in kinds if isinstance(k, Mapping)
    ):
        return False

    scope = match.get("scope")
    has_namespace = bool(res.namespace)
    if scope == "Cluster" and not (is_namespace(res) or not has_namespace):
        return False
    if scope == "Namespaced" and not (not is_namespace(res) and has_namespace):
        return False

    included = match.get("namespaces") or []
    if included and own_ns and not any(wildcard(str(p), own_ns) for p in included):
        return False
    excluded = match.get("excludedNamespaces") or []
    if excluded and own_ns and any(wildcard(str(p), own_ns) for p in excluded):
        return False

    if "labelSelector" in match and match["labelSelector"] is not None and not selector_matches(
        match["labelSelector"], _labels(res.body)
    ):
        return False

    ns_selector = match.get("namespaceSelector")
    if ns_selector is not None:
        if is_namespace(res):
            if not selector_matches(ns_selector, _labels(res.body)):
                return False
        elif has_namespace:
            if ns is None:
                raise MatchError(
                    f"namespaceSelector needs Namespace {res.namespace!r}, which is not in the "
                    "scanned manifests"
                )
            if not selector_matches(ns_selector, _labels(ns.body)):
                return False

    name = match.get("name")
    return not (name and not wildcard(str(name), res.name))
