"""``data.inventory``: the scanned objects laid out as Gatekeeper's sync cache holds them.

Gatekeeper only holds the kinds that its sync configuration names, and a template declares the
kinds it reads in the ``metadata.gatekeeper.sh/requires-sync-data`` annotation (the shipped
referential templates all do; ``gitops-checker policies export`` turns that into a SyncSet). A
template with that annotation sees only those kinds, as in a cluster synced per the
annotation; one without it sees every scanned object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

GVK = tuple[str, str, str]  # group, version, kind; "*" matches any


def synced(group: str, version: str, kind: str, kinds: Iterable[GVK]) -> bool:
    """Whether an object of this group, version and kind is among ``kinds``."""
    return any(g in ("*", group) and v in ("*", version) and k in ("*", kind)
               for g, v, k in kinds)


def layout(resources: Iterable[Any], kinds: Sequence[GVK] | None = None) -> dict[str, Any]:
    """``data.inventory`` of ``resources`` (all of them, or those of ``kinds``)."""
    cluster: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for res in resources:
        if kinds is not None and not synced(res.group, res.version, res.kind, kinds):
            continue
        slot = namespace.setdefault(res.namespace, {}) if res.namespace else cluster
        slot.setdefault(res.api_version, {}).setdefault(res.kind, {})[res.name] = res.body
    return {"cluster": cluster, "namespace": namespace}


def union(syncs: Iterable[tuple[GVK, ...] | None]) -> tuple[GVK, ...] | None:
    """The kinds several templates read together; None if one of them reads every kind."""
    out: set[GVK] = set()
    for sync in syncs:
        if sync is None:
            return None
        out.update(sync)
    return tuple(sorted(out))


class Inventory:
    """``data.inventory`` as JSON text, built once per set of kinds.

    With ``prune`` off every template sees every object (gator's suites: the inventory a case
    lists is what its template must see).
    """

    def __init__(self, known: Sequence[Any], prune: bool = True) -> None:
        self.known = known
        self.prune = prune
        self._json: dict[tuple[GVK, ...] | None, str] = {}

    def json(self, kinds: tuple[GVK, ...] | None) -> str:
        """The inventory holding ``kinds`` (None: every object)."""
        key = kinds if self.prune else None
        text = self._json.get(key)
        if text is None:
            text = self._json[key] = json.dumps(layout(self.known, key))
        return text
