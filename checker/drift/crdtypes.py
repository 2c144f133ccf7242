"""Known types of custom resources' fields, from the CRDs in the repository.

The built-in kinds' quantities and int-or-string fields are known (``normalize``); a custom
kind's are only known from its schema. A ``CustomResourceDefinition`` in the repository says,
for each field of ``spec``: ``x-kubernetes-int-or-string`` (``8080`` == ``"8080"``), a
quantity (int-or-string with the quantity pattern that ``resource.Quantity`` generates:
``0.5`` == ``500m``), or ``format: duration`` (Go's ``time.ParseDuration``: ``8760h`` ==
``8760h0m0s``). Both sides of such a field are put in canonical form before comparing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from checker.drift.normalize import canonical_quantity
from checker.drift.sources import KindRef
from checker.model import Resource

CRD = KindRef("apiextensions.k8s.io", "CustomResourceDefinition")
MAX_DEPTH = 32
Pattern = tuple[str, ...]  # field names, "*" for every list item or map value
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": Decimal(1), "us": Decimal(10**3), "µs": Decimal(10**3),
            "μs": Decimal(10**3), "ms": Decimal(10**6), "s": Decimal(10**9),
            "m": Decimal(60 * 10**9), "h": Decimal(3600 * 10**9)}


def canonical_duration(value: Any) -> Any:
    """A Go duration (``1h30m``, ``8760h0m0s``, ``-1.5s``) as ``<nanoseconds>ns``; else as is."""
    if not isinstance(value, str) or not value:
        return value
    text, sign = value, Decimal(1)
    if text[0] in "+-":
        sign = Decimal(-1) if text[0] == "-" else Decimal(1)
        text = text[1:]
    if text == "0":
        return "0ns"
    total, at = Decimal(0), 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != at:
            return value
        try:
            total += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        except InvalidOperation:
            return value
        at = match.end()
    if at != len(text) or at == 0:
        return value
    return f"{format((sign * total).normalize(), 'f')}ns"


def _int_or_string(value: Any) -> Any:
    return str(value) if type(value) is int else value


CANONICAL = {"quantity": canonical_quantity, "int-or-string": _int_or_string,
             "duration": canonical_duration}


def _typed(schema: Mapping[str, Any]) -> str | None:
    if schema.get("x-kubernetes-int-or-string") is True:
        pattern = str(schema.get("pattern", ""))
        return "quantity" if "[KMGTPE]i" in pattern else "int-or-string"
    if schema.get("format") == "duration":
        return "duration"
    return None


def _walk(schema: Any, path: Pattern, out: dict[Pattern, str], depth: int = 0) -> None:
    if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
        return
    kind = _typed(schema)
    if kind is not None and path:
        out.setdefault(path, kind)
        return
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for name, sub in props.items():
            _walk(sub, (*path, str(name)), out, depth + 1)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            _walk(schema[key], (*path, "*"), out, depth + 1)


class FieldTypes:
    """Typed field patterns per kind; ``apply`` canonicalizes them in a body, in place."""

    def __init__(self, types: Mapping[KindRef, Mapping[Pattern, str]] | None = None) -> None:
        self.types = {k: dict(v) for k, v in (types or {}).items() if v}

    @classmethod
    def from_resources(cls, resources: Iterable[Resource]) -> FieldTypes:
        """The typed ``spec`` fields of every CRD in the desired state (all its versions)."""
        types: dict[KindRef, dict[Pattern, str]] = {}
        for res in resources:
            if KindRef(res.group, res.kind) != CRD:
                continue
            spec = res.body.get("spec")
            if not isinstance(spec, Mapping):
                continue
            names = spec.get("names")
            kind = names.get("kind") if isinstance(names, Mapping) else None
            group = spec.get("group")
            if not isinstance(kind, str) or not isinstance(group, str):
                continue
            found = types.setdefault(KindRef(group, kind), {})
            for version in spec.get("versions") or []:
                schema = (version.get("schema") or {}).get("openAPIV3Schema") \
                    if isinstance(version, Mapping) else None
                props = schema.get("properties") if isinstance(schema, Mapping) else None
                if isinstance(props, Mapping):
                    _walk(props.get("spec"), ("spec",), found)
        return cls(types)

    def merged(self, extra: Mapping[KindRef, Mapping[Pattern, str]]) -> FieldTypes:
        """These types with ``extra`` (the configuration's) winning per field."""
        types = {k: dict(v) for k, v in self.types.items()}
        for ref, fields in extra.items():
            types.setdefault(ref, {}).update(fields)
        return FieldTypes(types)

    def __bool__(self) -> bool:
        return bool(self.types)

    def apply(self, ref: KindRef, body: dict[str, Any]) -> None:
        """Canonicalize the typed fields of ``body`` (a copy whose ``spec`` may be changed)."""
        for pattern, kind in self.types.get(ref, {}).items():
            _set(body, pattern, CANONICAL[kind])


def _set(node: Any, pattern: Pattern, fix: Any) -> None:
    if not pattern:
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            if rest:
                _set(node[key], rest, fix)
            elif not isinstance(node[key], (dict, list)):
                node[key] = fix(node[key])
    elif isinstance(node, list) and head == "*":
        for index, item in enumerate(node):
            if rest:
                _set(item, rest, fix)
            elif not isinstance(item, (dict, list)):
                node[index] = fix(item)


def _pattern(pointer: str) -> Pattern:
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


def field_types_of(doc: Any, display: str) -> dict[KindRef, dict[Pattern, str]]:
    """``drift.fieldTypes`` of a parsed configuration document (``yamlfile.Document``);
    ConfigError naming FILE:LINE. Called by the config loader on the file it read."""
    from checker.errors import ConfigError

    if not isinstance(doc.data, Mapping):
        return {}
    drift = doc.data.get("drift")
    entries = drift.get("fieldTypes") if isinstance(drift, Mapping) else None
    if entries is None:
        return {}
    top = doc.spans.get(("drift", "fieldTypes"))
    if not isinstance(entries, list):
        raise ConfigError(f"{display}:{top[0] if top else doc.line}: fieldTypes must be a "
                          "list")
    out: dict[KindRef, dict[Pattern, str]] = {}
    for index, entry in enumerate(entries):
        span = doc.spans.get(("drift", "fieldTypes", index))
        where = f"{display}:{span[0] if span else doc.line}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: a fieldTypes entry must be a mapping")
        unknown = sorted(set(map(str, entry)) - {"group", "kind", "path", "type"})
        kind, pointer, typ = entry.get("kind"), entry.get("path"), entry.get("type")
        group = entry.get("group", "")
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) in fieldTypes entry: "
                              f"{', '.join(unknown)} (expected group, kind, path, type)")
        if not isinstance(kind, str) or not kind or not isinstance(group, str):
            raise ConfigError(f"{where}: a fieldTypes entry needs kind (and group) strings")
        if not isinstance(pointer, str) or not pointer.startswith("/") or pointer == "/":
            raise ConfigError(f"{where}: path must be a JSON pointer such as /spec/duration")
        if typ not in CANONICAL:
            raise ConfigError(f"{where}: type must be one of {', '.join(sorted(CANONICAL))}")
        out.setdefault(KindRef(group, kind), {})[_pattern(pointer)] = str(typ)
    return out
