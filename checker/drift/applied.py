"""Fields the GitOps tool applied that Git no longer declares: the evidence a live object carries.

Comparing the live object projected onto the fields Git declares cannot see a field that was
deleted from Git but is still set live (a label, an annotation, a scalar, a whole ``data:``
block). The engines see it through what they applied before: Argo CD through the
``kubectl.kubernetes.io/last-applied-configuration`` annotation (client-side apply) or the
``managedFields`` of its field manager (server-side apply), Flux through the field ownership
of ``kustomize-controller``. A field owned by such a manager and not declared in Git is
removed by the next sync (unless another manager also owns it): until then it is drift.

The evidence is kept value-free. When a snapshot is read, ``managedFields`` are reduced to
manager, operation, apiVersion and field set (``FieldsV1``: field names and list keys only;
on a Secret also without the ``v:`` entries of set lists), and the last-applied annotation is
turned into a field set of the same form under the manager name ``last-applied-configuration``
before it is dropped, so no value of it survives.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from checker.errors import ConfigError
from checker.model import FieldPath

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
LAST_APPLIED_MANAGER = "last-applied-configuration"
# Flux (kustomize-controller, helm-controller), Argo CD (server-side apply and its older
# client-side manager), kubectl server-side apply (only its Apply operations: "kubectl" with
# Update is a hand edit), and what ``kubectl apply`` wrote into last-applied.
DEFAULT_FIELD_MANAGERS = (
    "kustomize-controller", "helm-controller", "argocd-controller",
    "argocd-application-controller", "kubectl:Apply", LAST_APPLIED_MANAGER,
)
MAX_DEPTH = 64
# SSA list keys (``k:{...}``) of the keyed lists compare by (``normalize.KEYED_LISTS``).
_NAME_KEYED = frozenset({"containers", "initContainers", "ephemeralContainers", "volumes",
                         "env", "imagePullSecrets"})
_OTHER_KEYED = {"volumeMounts": "mountPath", "volumeDevices": "devicePath", "hostAliases": "ip"}
# Labels and annotations the tools add themselves when they apply: never in Git.
TOOL_LABEL_PREFIXES = ("kustomize.toolkit.fluxcd.io/", "helm.toolkit.fluxcd.io/")
TOOL_LABELS = frozenset({"app.kubernetes.io/instance", "argocd.argoproj.io/instance"})


def _ssa_key(parent: str, item: Mapping[str, Any]) -> str | None:
    """The ``k:{...}`` element of a keyed list item, as the API server writes it."""
    if parent in _NAME_KEYED:
        name = item.get("name")
        return "k:" + json.dumps({"name": name}) if isinstance(name, str) else None
    if parent in _OTHER_KEYED:
        field = _OTHER_KEYED[parent]
        value = item.get(field)
        return "k:" + json.dumps({field: value}) if isinstance(value, str) else None
    if parent == "ports":
        number = item.get("containerPort", item.get("port"))
        if not isinstance(number, int) or isinstance(number, bool):
            return None
        which = "containerPort" if "containerPort" in item else "port"
        return "k:" + json.dumps({which: number, "protocol": item.get("protocol") or "TCP"})
    return None


def field_set(value: Any, parent: str = "", depth: int = 0) -> dict[str, Any]:
    """A value's field set in ``FieldsV1`` form: names and list keys, never values."""
    if depth > MAX_DEPTH:
        return {}
    if isinstance(value, Mapping):
        return {f"f:{k}": field_set(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, Mapping) for i in value):
        keys = [_ssa_key(parent, i) for i in value]
        if None not in keys and len(set(keys)) == len(keys):
            return {str(k): {".": {}, **field_set(i, "", depth + 1)}
                    for k, i in zip(keys, value, strict=True)}
    return {}  # a scalar, or a list replaced as a whole


def _value_free(fields: Any, depth: int = 0) -> dict[str, Any]:
    """A field set without ``v:`` elements (a set list's values), bounded in depth."""
    if not isinstance(fields, Mapping) or depth > MAX_DEPTH:
        return {}
    return {str(k): _value_free(v, depth + 1) for k, v in fields.items()
            if isinstance(k, str) and not k.startswith("v:")}


def evidence(meta: Mapping[str, Any], *, secret: bool) -> list[dict[str, Any]]:
    """The value-free ``managedFields`` a snapshot keeps: no times, no subresources.

    The last-applied annotation (if any) becomes one more entry; its values are not kept.
    """
    out: list[dict[str, Any]] = []
    for entry in meta.get("managedFields") or []:
        if not isinstance(entry, Mapping) or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1")
        if (entry.get("fieldsType", "FieldsV1") != "FieldsV1" or not isinstance(fields, Mapping)
                or not fields):
            continue
        out.append({"manager": str(entry.get("manager", "")),
                    "operation": str(entry.get("operation", "")),
                    "apiVersion": str(entry.get("apiVersion", "")),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _value_free(fields) if secret else _copy(fields)})
    annotations = meta.get("annotations")
    applied = annotations.get(LAST_APPLIED) if isinstance(annotations, Mapping) else None
    if isinstance(applied, str):
        try:
            parsed = json.loads(applied)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, Mapping) and parsed:
            out.append({"manager": LAST_APPLIED_MANAGER, "operation": "Apply",
                        "apiVersion": str(parsed.get("apiVersion", "")),
                        "fieldsType": "FieldsV1", "fieldsV1": field_set(parsed)})
    return out


def _copy(fields: Any, depth: int = 0) -> Any:
    if not isinstance(fields, Mapping) or depth > MAX_DEPTH:
        return {}
    return {str(k): _copy(v, depth + 1) for k, v in fields.items()}


def selected(entry: Mapping[str, Any], managers: Iterable[str]) -> bool:
    """Whether a managedFields entry is one of the configured managers (``name[:Operation]``)."""
    manager, operation = str(entry.get("manager", "")), str(entry.get("operation", ""))
    for spec in managers:
        name, _, op = spec.partition(":")
        if name == manager and (not op or op == operation):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _element(raw: str, parent: str) -> str | None:
    """A ``FieldsV1`` element as a normalized path part (list keys as compare names them)."""
    if raw.startswith("f:"):
        return raw[2:]
    if raw.startswith("k:"):
        try:
            key = json.loads(raw[2:])
        except ValueError:
            return None
        if not isinstance(key, dict):
            return None
        from checker.drift.normalize import KEYED_LISTS

        key_of = KEYED_LISTS.get(parent)
        if parent == "ports" and "protocol" not in key:
            key = {**key, "protocol": "TCP"}
        value = key_of(key) if key_of is not None else None
        return str(value) if value is not None else None
    return None  # "i:" and "v:" elements, ".": not mapped


def _skipped(path: FieldPath, part: str) -> bool:
    if not path:
        return part in ("apiVersion", "kind", "status")
    if path == ("metadata",):
        return part not in ("labels", "annotations")
    if path in (("metadata", "labels"), ("metadata", "annotations")):
        from checker.drift.normalize import _bookkeeping

        return (_bookkeeping(part) or part.startswith(TOOL_LABEL_PREFIXES)
                or part in TOOL_LABELS)
    return False


def child(node: Any, part: str, parent: str) -> Any:
    """``node[part]`` of a plain object, a keyed list's item by its key; None when absent."""
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list):
        from checker.drift.normalize import KEYED_LISTS

        key_of = KEYED_LISTS.get(parent)
        if key_of is None:
            return None
        for item in node:
            if isinstance(item, dict) and str(key_of(item)) == part:
                return item
    return None


def undeclared(fields: Mapping[str, Any], want: Any, have: Any,
               path: FieldPath = ()) -> Iterator[FieldPath]:
    """Paths in the applied field set that Git (``want``) does not declare and live has.

    ``want`` and ``have`` are plain objects (or canonical ones, with keyed lists as
    mappings). A path Git declares as a whole (a scalar, a list replaced as a whole) is not
    descended into.
    """
    parent = str(path[-1]) if path else ""
    for raw, sub in fields.items():
        part = _element(raw, parent)
        if part is None or _skipped(path, part):
            continue
        live = child(have, part, parent)
        if live is None:
            continue  # already gone from the cluster
        declared = child(want, part, parent)
        if declared is not None:
            if isinstance(sub, dict) and sub and isinstance(declared, (dict, list)):
                yield from undeclared(sub, declared, live, (*path, part))
            continue
        if _nothing_applied(path, part, sub, live):
            continue
        if (raw.startswith("f:") and isinstance(live, (dict, list))
                and isinstance(sub, dict) and any(k != "." for k in sub)):
            # a whole block Git dropped (labels, data): one path per key, or list entry
            yield from undeclared(sub, None, live, (*path, part))
            continue
        yield (*path, part)


def _nothing_applied(path: FieldPath, part: str, sub: Any, live: Any) -> bool:
    """An empty mapping or list was applied, or live holds nothing but bookkeeping there.

    ``kubectl apply`` records ``"annotations": {}`` in its last-applied configuration (its own
    annotation taken out), and a Deployment's only live annotation may be the controller's
    ``deployment.kubernetes.io/revision``: neither is a field Git dropped.
    """
    at = (*path, part)
    if isinstance(live, dict):
        if at in (("metadata", "labels"), ("metadata", "annotations")) and not (
                isinstance(sub, dict) and any(str(k).startswith("f:") for k in sub)):
            return True  # the tool applied none of its keys: the live keys are others'
        return not any(not _skipped(at, str(k)) for k in live)
    return isinstance(live, list) and not live


def declares(body: Any, path: FieldPath) -> bool:
    """Whether a plain object has a (non-null) value at a normalized path."""
    node, parent = body, ""
    for part in path:
        node = child(node, str(part), parent)
        if node is None:
            return False
        parent = str(part)
    return True


def applied_fields(live: Mapping[str, Any], managers: Sequence[str]
                   ) -> list[tuple[str, Mapping[str, Any]]]:
    """The field sets of the configured managers on a live object, for its apiVersion."""
    meta = live.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if not entries:
        return []
    version = str(live.get("apiVersion", ""))
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not selected(entry, managers):
            continue
        fields = entry.get("fieldsV1")
        if isinstance(fields, Mapping) and entry.get("apiVersion") in (version, "", None):
            out.append((str(entry.get("manager", "")), fields))
    return out


def parse_managers(values: Any, where: str) -> tuple[str, ...]:
    """``NAME`` or ``NAME:Apply``/``NAME:Update`` strings; ConfigError naming ``where``."""
    if not isinstance(values, list):
        raise ConfigError(f"{where}: fieldManagers must be a list of manager names")
    out = []
    for value in values:
        name, _, operation = str(value).partition(":") if isinstance(value, str) else ("", "", "")
        if not name or operation not in ("", "Apply", "Update") or any(c.isspace() for c in name):
            raise ConfigError(f"{where}: {value!r} is not a field manager (expected NAME, "
                              "NAME:Apply or NAME:Update)")
        out.append(str(value))
    return tuple(out)


def field_managers_of(doc: Any, display: str) -> tuple[str, ...] | None:
    """``drift.fieldManagers`` of a parsed configuration document (``yamlfile.Document``), or
    None when it does not say. The config loader calls this on the file it read (the base
    ref's in a pull request: ``checker.trust``), so the setting is never read a second time."""
    if not isinstance(doc.data, Mapping):
        return None
    drift = doc.data.get("drift")
    if not isinstance(drift, Mapping) or "fieldManagers" not in drift:
        return None
    values = drift["fieldManagers"]
    span = doc.spans.get(("drift", "fieldManagers"))
    where = f"{display}:{span[0] if span else doc.line}"
    if not isinstance(values, list):
        return parse_managers(values, where)
    out: list[str] = []
    for index, value in enumerate(values):
        item = doc.spans.get(("drift", "fieldManagers", index))
        out += parse_managers([value], f"{display}:{item[0]}" if item else where)
    return tuple(out)
