"""Ignore rules: fields a controller legitimately changes, so they are never called drift.

An entry selects objects by ``group``, ``kind``, ``namespace`` and ``name`` (shell-style
wildcards, each optional) and lists ``jsonPointers`` (RFC 6901, ``*`` matches one segment) into
the object. A pointer matches a field and everything below it; list items may be named by
index (``/spec/template/spec/containers/0``) or, for lists keyed by name, by key
(``/spec/template/spec/containers/app``). An entry without pointers ignores the whole object
(no modified, missing or unmanaged finding).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from checker.errors import ConfigError
from checker.load.yamlfile import YamlProblem, decode, parse_documents
from checker.model import FieldPath, Resource

SELECTOR_KEYS = ("group", "kind", "namespace", "name")
ENTRY_KEYS = frozenset({*SELECTOR_KEYS, "jsonPointers", "pointers", "reason"})


@dataclass(frozen=True)
class IgnoreRule:
    """One ignore entry: an object selector and the JSON pointers it ignores."""

    group: str = "*"
    kind: str = "*"
    namespace: str = "*"
    name: str = "*"
    pointers: tuple[str, ...] = ()
    reason: str = ""
    source: str = ""

    def selects(self, group: str, kind: str, namespace: str, name: str) -> bool:
        """True when the object matches every selector."""
        return (fnmatchcase(group, self.group) and fnmatchcase(kind, self.kind)
                and fnmatchcase(namespace, self.namespace) and fnmatchcase(name, self.name))

    @property
    def whole_object(self) -> bool:
        """An entry without pointers ignores the object entirely."""
        return not self.pointers

    def covers(self, paths: Iterable[FieldPath]) -> bool:
        """True when a pointer is a prefix of any of the given spellings of a field path."""
        spellings = [[str(p) for p in path] for path in paths]
        for pointer in self.pointers:
            segments = pointer_segments(pointer)
            for path in spellings:
                if len(segments) <= len(path) and all(
                        s == "*" or s == p for s, p in zip(segments, path, strict=False)):
                    return True
        return False


def pointer_segments(pointer: str) -> list[str]:
    """RFC 6901 segments of a JSON pointer ('' is the whole document)."""
    if pointer == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _entry(data: Any, where: str) -> IgnoreRule:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: an ignore entry must be a mapping")
    unknown = sorted(set(map(str, data)) - ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in ignore entry: {', '.join(unknown)} "
                          f"(expected: {', '.join(sorted(ENTRY_KEYS))})")
    values: dict[str, str] = {}
    for key in SELECTOR_KEYS:
        value = data.get(key, "*")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string")
        values[key] = value
    pointers = data.get("jsonPointers", data.get("pointers", []))
    if isinstance(pointers, str):
        pointers = [pointers]
    if not isinstance(pointers, list) or not all(isinstance(p, str) for p in pointers):
        raise ConfigError(f"{where}: jsonPointers must be a list of strings")
    for pointer in pointers:
        if pointer and not pointer.startswith("/"):
            raise ConfigError(f"{where}: JSON pointer {pointer!r} must start with '/'")
    reason = data.get("reason", "")
    return IgnoreRule(group=values["group"], kind=values["kind"],
                      namespace=values["namespace"], name=values["name"],
                      pointers=tuple(pointers), reason=str(reason), source=where)


def parse_ignore_rules(entries: Any, source: str = "",
                       lines: Sequence[int] | None = None) -> list[IgnoreRule]:
    """Ignore entries (the ``drift.ignore`` list of the configuration) as rules.

    ``source`` names the file and ``lines`` the 1-based line of each entry for messages.
    Raises ``ConfigError`` naming the entry on bad input.
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError(f"{source or 'drift.ignore'}: ignore rules must be a list")
    out = []
    for index, data in enumerate(entries):
        if lines is not None and index < len(lines):
            where = f"{source}:{lines[index]}"
        else:
            where = f"{source or 'drift.ignore'}[{index}]"
        out.append(_entry(data, where))
    return out


def load_ignore_file(path: Path, display: str | None = None) -> list[IgnoreRule]:
    """Read an ignore file: a list of entries, or a mapping with ``ignore`` or ``drift.ignore``."""
    name = display or str(path)
    try:
        text = decode(path.read_bytes())
    except OSError as err:
        raise ConfigError(f"{name}: cannot read ignore file: {err.strerror}") from err
    except YamlProblem as problem:
        raise ConfigError(f"{name}:{problem.line}: {problem.message}") from problem
    docs = list(parse_documents(text))
    if not docs:
        return []
    first = docs[0]
    if isinstance(first, YamlProblem):
        raise ConfigError(f"{name}:{first.line}: {first.message}")
    data = first.data
    prefix: FieldPath = ()
    if isinstance(data, Mapping) and isinstance(data.get("drift"), Mapping):
        data, prefix = data["drift"].get("ignore"), ("drift", "ignore")
    elif isinstance(data, Mapping) and "ignore" in data:
        data, prefix = data["ignore"], ("ignore",)
    elif isinstance(data, Mapping):
        raise ConfigError(f"{name}:{first.line}: expected a list of ignore entries or an "
                          "'ignore:' key")
    lines = []
    if isinstance(data, list):
        for index in range(len(data)):
            span = first.spans.get((*prefix, index))
            lines.append(span[0] if span else first.line)
    return parse_ignore_rules(data, name, lines)


def autoscaler_rules(resources: Iterable[Resource]) -> list[IgnoreRule]:
    """``/spec/replicas`` of every object a HorizontalPodAutoscaler in the desired state scales."""
    out = []
    for res in resources:
        if res.kind != "HorizontalPodAutoscaler" or not res.group.startswith("autoscaling"):
            continue
        spec = res.body.get("spec")
        target = spec.get("scaleTargetRef") if isinstance(spec, Mapping) else None
        if not isinstance(target, Mapping) or not isinstance(target.get("name"), str):
            continue
        api_version = str(target.get("apiVersion", ""))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        out.append(IgnoreRule(
            group=group, kind=str(target.get("kind", "*")), namespace=res.namespace,
            name=target["name"], pointers=("/spec/replicas",),
            reason=f"replicas managed by HorizontalPodAutoscaler {res.namespace}/{res.name}",
            source=str(res.location)))
    return out
