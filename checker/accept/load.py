"""Loading acceptances: acceptance files (validated with the shipped JSON Schema) and the
annotations of an object, its pod template and its Namespace."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema

from checker import securitytower
from checker.accept.model import (
    _TEMPLATE_PATHS,
    OWN_EXPIRES,
    OWN_OWNER,
    OWN_PREFIX,
    RULE_INVALID,
    Acceptance,
    Selector,
    _annotations,
    _problem,
)
from checker.load.objects import YAML_SUFFIXES, read_documents, relpath
from checker.load.yamlfile import Document
from checker.model import Finding, Resource, Severity, SourceLocation


def acceptance_schema() -> dict[str, Any]:
    """The shipped JSON Schema of acceptance files."""
    text = importlib_resources.files("checker").joinpath(
        "schemas/risk-acceptance.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _line(doc: Document, path: Sequence[Any]) -> int:
    key = tuple(path)
    for end in range(len(key), -1, -1):
        span = doc.spans.get(key[:end])
        if span is not None:
            return span[0]
    return doc.line


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
    return list(dict.fromkeys(out))


def load_acceptances(paths: Iterable[Path], root: Path) -> tuple[list[Acceptance], list[Finding]]:
    """Read acceptance files; an invalid file or entry is an error finding, the rest still load."""
    validator = jsonschema.Draft7Validator(acceptance_schema())
    out: list[Acceptance] = []
    problems: list[Finding] = []
    seen: dict[str, SourceLocation] = {}
    for file in _files(paths):
        rel = relpath(file, root)
        docs, findings = read_documents(file, rel, root)
        for f in findings:
            problems.append(_problem(RULE_INVALID, Severity.ERROR,
                                     f"acceptance file cannot be read: {f.message}", f.location))
        for doc in docs:
            errors = sorted(validator.iter_errors(doc.data),
                            key=lambda e: _line(doc, list(e.absolute_path)))
            if errors:
                err = errors[0]
                where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
                problems.append(_problem(
                    RULE_INVALID, Severity.ERROR, f"invalid acceptance at {where}: {err.message}",
                    SourceLocation(rel, _line(doc, list(err.absolute_path)))))
                continue
            for index, entry in enumerate(doc.data["acceptances"]):
                loc = SourceLocation(rel, _line(doc, ["acceptances", index]))
                try:
                    expires = dt.date.fromisoformat(entry["expires"])
                except ValueError:
                    problems.append(_problem(RULE_INVALID, Severity.ERROR,
                                             f"acceptance {entry['id']}: expires "
                                             f"{entry['expires']!r} is not a date (YYYY-MM-DD)",
                                             SourceLocation(rel, _line(
                                                 doc, ["acceptances", index, "expires"]))))
                    continue
                if entry["id"] in seen:
                    problems.append(_problem(RULE_INVALID, Severity.ERROR,
                                             f"acceptance id {entry['id']!r} is already used at "
                                             f"{seen[entry['id']]}", loc))
                    continue
                seen[entry["id"]] = loc
                selectors = tuple(Selector(
                    cluster=str(s.get("cluster", "*")), namespace=str(s.get("namespace", "*")),
                    kind=str(s.get("kind", "*")), name=str(s.get("name", "*")),
                    labels={str(k): str(v) for k, v in (s.get("labels") or {}).items()},
                ) for s in entry["resources"])
                out.append(Acceptance(
                    id=entry["id"], policy=entry["policy"], selectors=selectors,
                    justification=" ".join(entry["justification"].split()),
                    owner=entry["owner"], expires=expires, location=loc,
                    approver=entry.get("approver", ""), ticket=entry.get("ticket", ""),
                ))
    return out, problems


def inline_acceptances(cluster: str, res: Resource,
                       namespaces: Mapping[str, Resource]) -> list[Acceptance]:
    """Annotation acceptances for ``res``: its own, its pod template's and its Namespace's."""
    found: list[Acceptance] = []
    sources: list[tuple[Resource, tuple[str, ...]]] = [(res, p) for p in _TEMPLATE_PATHS]
    ns = namespaces.get(res.namespace) if res.namespace else None
    if ns is not None:
        sources.append((ns, ("metadata", "annotations")))
    for holder, path in sources:
        annotations = _annotations(holder.body, path)
        owner = annotations.get(OWN_OWNER, "")
        expires: dt.date | None = None
        try:
            expires = dt.date.fromisoformat(annotations[OWN_EXPIRES]) \
                if OWN_EXPIRES in annotations else None
        except ValueError:
            expires = None
        for key, reason in sorted(annotations.items()):
            st_policy = securitytower.exclusion_policy(key)
            if st_policy is not None:
                policy = st_policy
            elif key.startswith(OWN_PREFIX):
                policy = key[len(OWN_PREFIX):]
            else:
                continue
            loc = holder.locate((*path, key))
            found.append(Acceptance(
                id=key, policy=policy,
                selectors=(Selector(cluster=cluster, namespace=res.namespace or "",
                                    kind=res.kind, name=res.name),),
                justification=" ".join(reason.split()) or "(no reason given)", owner=owner,
                expires=expires, location=loc, kind="annotation",
                holder=(holder.kind, holder.name),
            ))
    return found
