"""What the GitOps engines are told, per object, not to reconcile or compare.

Flux (kustomize-controller) reads these keys as annotations or labels, on the object in Git
and on the object in the cluster:

* ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` — Flux does not apply the object: its
  drift is never corrected, so it is not compared (a note says so);
* ``kustomize.toolkit.fluxcd.io/ssa: Ignore`` — the same, for server-side apply;
* ``kustomize.toolkit.fluxcd.io/ssa: IfNotPresent`` — Flux creates the object when it is
  missing and never updates it: only a missing object is drift;
* ``kustomize.toolkit.fluxcd.io/ssa: Merge`` — Flux applies the declared fields and keeps
  fields other managers added: compared as usual (declared fields are still corrected);
* ``kustomize.toolkit.fluxcd.io/prune: disabled`` — Flux does not delete the object when it
  leaves Git: a live object with it is not unmanaged.

Argo CD reads ``argocd.argoproj.io/compare-options`` (a comma-separated list) on the live
object: ``IgnoreExtraneous`` means a live object that is not in Git does not make the
application out of sync, so it is not unmanaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FLUX_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
FLUX_SSA = "kustomize.toolkit.fluxcd.io/ssa"
FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
ARGO_COMPARE = "argocd.argoproj.io/compare-options"


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """An object's annotations, or an empty mapping."""
    meta = obj.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    return notes if isinstance(notes, Mapping) else {}


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """An object's labels, or an empty mapping."""
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _value(notes: Mapping[str, Any], key: str) -> str:
    value = notes.get(key)
    return value.strip().lower() if isinstance(value, str) else ""


def _flux(obj: Mapping[str, Any], key: str) -> set[str]:
    """A Flux selector's values on an object: Flux matches its selectors in the labels and the
    annotations alike, values case-insensitively (fluxcd/pkg ssa/utils ``AnyInMetadata``)."""
    return {_value(annotations_of(obj), key), _value(labels_of(obj), key)}


def not_reconciled(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> str | None:
    """Why Flux does not reconcile this object (for the note), or None when it does."""
    for side, obj in (("in Git", desired), ("in the cluster", live)):
        if obj is None:
            continue
        if "disabled" in _flux(obj, FLUX_RECONCILE):
            return f"{FLUX_RECONCILE}: disabled {side}"
        if "ignore" in _flux(obj, FLUX_SSA):
            return f"{FLUX_SSA}: Ignore {side}"
    return None


def create_only(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Flux creates the object if it is missing and never updates it (``ssa: IfNotPresent``)."""
    return any("ifnotpresent" in _flux(o, FLUX_SSA)
               for o in (desired, live) if o is not None)


def kept_when_not_in_git(live: Mapping[str, Any]) -> str | None:
    """Why a live object not in Git is not unmanaged per its engine, or None."""
    notes = annotations_of(live)
    if "disabled" in _flux(live, FLUX_PRUNE):
        return f"{FLUX_PRUNE}: disabled"
    options = notes.get(ARGO_COMPARE)
    if isinstance(options, str) and "ignoreextraneous" in {
            o.strip().lower() for o in options.split(",")}:
        return f"{ARGO_COMPARE}: IgnoreExtraneous"
    return None
