"""Gatekeeper export: acceptances carried into Constraints so the cluster agrees with CI."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from checker.accept.model import Acceptance
from checker.model import Finding, Severity, SourceLocation

_GK_GLOB = re.compile(r"^\*?[^*?\[\]]*\*?$")


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
