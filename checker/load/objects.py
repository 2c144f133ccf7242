"""Turn YAML files into Resources and input findings."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.load import workspace, yamlfile
from checker.load.yamlfile import Document, YamlProblem, decode, parse_documents
from checker.model import Coverage, FieldPath, Finding, Resource, Severity, SourceLocation

YAML_SUFFIXES = (".yaml", ".yml", ".json")

RULE_PARSE = "input.parse-error"
RULE_NOT_OBJECT = "input.not-an-object"
RULE_EMPTY = "input.empty-file"
RULE_KUSTOMIZE = "input.kustomize-error"
RULE_MISSING_PATH = "input.missing-path"
RULE_NOT_CHECKED = "input.not-checked"
RULE_DUPLICATE_KEY = "input.duplicate-key"
RULE_INVALID_TEXT = "input.invalid-text"
RULE_POLICY_SELECTION = "input.policy-selection"
_NOTE_RULES = {yamlfile.NOTE_DUPLICATE_KEY: RULE_DUPLICATE_KEY,
               yamlfile.NOTE_INVALID_TEXT: RULE_INVALID_TEXT}


@dataclass
class LoadResult:
    """Resources found, input findings, and how many files were read."""

    resources: list[Resource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    coverage: list[Coverage] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        """Merge another result into this one."""
        self.resources.extend(other.resources)
        self.findings.extend(other.findings)
        self.files |= other.files
        self.coverage.extend(other.coverage)

    def not_checked(self, kind: str, what: str, path: str, reason: str, line: int = 1,
                    severity: Severity = Severity.WARNING) -> None:
        """Record an input that was not checked: a ledger entry and an input finding."""
        self.coverage.append(Coverage("not-checked", kind, what, path, line, reason))
        self.findings.append(input_finding(
            RULE_NOT_CHECKED, f"{what} was not checked: {reason}", path, line,
            severity=severity))


def relpath(path: Path, root: Path) -> str:
    """Path relative to the repository root, with forward slashes.

    Folders are resolved, the file's own name is kept: a symlinked file is named by its link
    (a symlink out of the repository must be named by what was committed, not by its target).
    """
    link = path.is_symlink()
    real = path.absolute().parent.resolve() / path.name if link else path.resolve()
    return Path(os.path.relpath(real, _resolved(root))).as_posix()


@functools.lru_cache(maxsize=64)
def _resolved(root: Path) -> Path:
    """``root.resolve()``, once per root and run (the same root is asked for every file)."""
    return root.resolve()


def is_k8s_object(data: Any) -> bool:
    """A mapping with string ``apiVersion`` and ``kind``."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("apiVersion"), str)
        and isinstance(data.get("kind"), str)
        and bool(data["apiVersion"])
        and bool(data["kind"])
    )


def input_finding(
    rule: str, message: str, path: str, line: int = 1, column: int = 1,
    severity: Severity = Severity.ERROR,
) -> Finding:
    """A finding about input that could not be read or understood."""
    return Finding(
        rule_id=rule, category="input", severity=severity, message=message,
        location=SourceLocation(path, line, column),
    )


class Marks(Mapping[FieldPath, SourceLocation]):
    """Field path -> SourceLocation, built lazily from a document's spans.

    Creating a SourceLocation for every node of every object costs more than parsing; most
    are never looked at, so locations are made on lookup. ``prefix`` re-roots the spans of
    an item inside a ``kind: List``.
    """

    __slots__ = ("_path", "_prefix", "_spans")

    def __init__(self, spans: Mapping[FieldPath, tuple[int, int, int, int]], path: str,
                 prefix: FieldPath = ()) -> None:
        self._spans = spans
        self._path = path
        self._prefix = prefix

    def __getitem__(self, key: FieldPath) -> SourceLocation:
        s = self._spans[self._prefix + tuple(key)]
        return SourceLocation(self._path, s[0], s[1], s[2], s[3])

    def __iter__(self) -> Iterator[FieldPath]:
        n = len(self._prefix)
        return (k[n:] for k in self._spans if k[:n] == self._prefix)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def make_resource(data: dict[str, Any], location: SourceLocation,
                  marks: Mapping[FieldPath, SourceLocation]) -> Resource:
    """Build a Resource from a Kubernetes object mapping."""
    meta = data.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name")
    if not isinstance(name, str):
        name = meta.get("generateName") if isinstance(meta.get("generateName"), str) else ""
    namespace = meta.get("namespace")
    return Resource(
        api_version=data["apiVersion"], kind=data["kind"],
        namespace=namespace if isinstance(namespace, str) else "",
        name=str(name), body=data, location=location, marks=marks,
    )


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else "a string"


def metadata_problem(data: Mapping[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """Where and why the Kubernetes decoder refuses an object's ``metadata``, or None.

    ``ObjectMeta`` is a typed struct: ``name``, ``generateName`` and ``namespace`` are strings
    and labels and annotations map strings to strings, so ``name: 5`` or ``app: true`` under
    labels makes kubectl (and Flux's and Argo CD's apply) fail with "cannot unmarshal ... of
    type string". Such an object is never applied.
    """
    meta = data.get("metadata")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        return ("metadata",), f"metadata is {_go_type(meta)}, not an object"
    for key in ("name", "generateName", "namespace"):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            return ("metadata", key), f"metadata.{key} is {_go_type(value)}, not a string"
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return ("metadata", key), f"metadata.{key} is {_go_type(value)}, not an object"
        for name, item in value.items():
            if item is not None and not isinstance(item, str):
                return (("metadata", key, name),
                        f"metadata.{key}.{name} is {_go_type(item)}, not a string (quote it)")
    return None


def is_list(data: Mapping[str, Any]) -> bool:
    """``kind: List``, or a ``...List`` kind with ``items``: expanded into its items."""
    return data.get("kind") == "List" or (
        str(data.get("kind", "")).endswith("List") and isinstance(data.get("items"), list))


def rejected_objects(doc: Document, rel: str) -> list[Finding]:
    """An error for each object of ``doc`` whose metadata the Kubernetes decoder refuses."""
    data = doc.data
    objects = ([(("items", i), item) for i, item in enumerate(data.get("items") or [])
                if is_k8s_object(item)] if is_list(data) else [((), data)])
    out = []
    for prefix, obj in objects:
        problem = metadata_problem(obj)
        if problem is not None:
            where, why = problem
            line = doc.location(rel, (*prefix, *where)).line
            out.append(input_finding(
                RULE_PARSE, f"{why}: the Kubernetes decoder rejects this {obj.get('kind')}, "
                "so it cannot be applied (it was not checked)", rel, line))
    return out


def resources_from_document(doc: Document, path: str) -> Iterator[Resource]:
    """One resource per object; ``kind: List`` objects are expanded into their items."""
    data = doc.data
    if is_list(data):
        for index, item in enumerate(data.get("items") or []):
            if is_k8s_object(item) and metadata_problem(item) is None:
                marks = Marks(doc.spans, path, ("items", index))
                yield make_resource(item, marks.get((), doc.location(path)), marks)
        return
    if metadata_problem(data) is None:
        yield make_resource(data, doc.location(path), Marks(doc.spans, path))


def read_documents(file: Path, rel: str,
                   root: Path | None = None) -> tuple[list[Document], list[Finding]]:
    """Parse one file; problems become findings instead of exceptions.

    The file is read through ``workspace.read_bytes``: inside ``root`` it must not be a
    symlink out of it, and it must be a regular file within the size limit; a refused file
    is an ``input.not-checked`` error finding.
    """
    try:
        raw = workspace.read_bytes(file, root, yamlfile.MAX_FILE_BYTES)
    except workspace.Refused as refused:
        return [], [input_finding(RULE_NOT_CHECKED, f"{rel} was not checked: {refused.message}",
                                  rel)]
    except OSError as err:
        return [], [input_finding(RULE_PARSE, f"cannot read file: {err.strerror}", rel)]
    try:
        text = decode(raw)
    except YamlProblem as problem:
        return [], [input_finding(RULE_PARSE, problem.message, rel, problem.line)]
    if not text.strip():
        return [], [input_finding(RULE_EMPTY, "file is empty", rel, 1, 1, Severity.WARNING)]
    docs: list[Document] = []
    findings: list[Finding] = []
    last_line = text.count("\n") + 1  # the line after a final newline counts, as for PyYAML
    for item in parse_documents(text):
        if isinstance(item, YamlProblem):  # the parser may name the line after the last one
            line = min(item.line, max(last_line, 1))
            findings.append(input_finding(RULE_PARSE, item.message, rel, line,
                                          item.column if line == item.line else 1))
            continue
        docs.append(item)
        if item.notes and is_k8s_object(item.data):
            findings += [input_finding(_NOTE_RULES[kind], message, rel, line, column,
                                       Severity.WARNING)
                         for kind, message, line, column in item.notes]
    if findings and not docs and rel.endswith(".json") and not (
            "apiVersion" in text or '"kind"' in text):
        return [], []  # not a manifest that failed (a tsconfig.json with comments): skipped
    return docs, findings


def _starts_an_object(data: Any) -> bool:
    """A mapping with ``apiVersion`` and ``kind`` keys (whatever their values), or a List
    holding one: something meant to be applied."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            items = item.get("items")
            if is_list(item):
                stack += items if isinstance(items, list) else []  # as resources_from_document
            elif "apiVersion" in item and "kind" in item:
                return True
    return False


def _list_items_not_objects(doc: Document, rel: str) -> list[Finding]:
    """A warning for each item of a ``kind: List`` that is not an object (kubectl refuses
    it), so no item disappears without a word."""
    data = doc.data
    items = data.get("items")
    if not (data.get("kind") == "List" or str(data.get("kind", "")).endswith("List")) or (
            not isinstance(items, list)):
        return []
    out = []
    for index, item in enumerate(items):
        if not is_k8s_object(item):
            line = doc.location(rel, ("items", index)).line
            out.append(input_finding(
                RULE_NOT_OBJECT, f"item {index} of the {data.get('kind')} is not a Kubernetes "
                "object (apiVersion and kind must be non-empty strings)", rel, line, 1,
                Severity.WARNING))
    return out


def load_file(file: Path, root: Path) -> LoadResult:
    """Load the Kubernetes objects of one YAML file."""
    rel = relpath(file, root)
    docs, findings = read_documents(file, rel, root)
    return file_result(file, rel, docs, findings)


def file_result(file: Path, rel: str, docs: list[Document],
                findings: list[Finding]) -> LoadResult:
    """The objects and input findings of one file, from its parsed documents."""
    result = LoadResult(files={rel})
    for refused in findings:
        if refused.rule_id == RULE_NOT_CHECKED:  # read_documents refused the file
            result.coverage.append(Coverage("not-checked", "file", rel, rel, 1,
                                            refused.message))
    objects = [d for d in docs if is_k8s_object(d.data)]
    # apiVersion and kind, but not both non-empty strings (kind: y is true), or a List
    # without them around items that are objects: kubectl refuses it, so it is a finding
    broken = {id(d) for d in docs if not is_k8s_object(d.data) and _starts_an_object(d.data)}
    if not objects and not findings and not broken:
        return LoadResult()  # not a Kubernetes manifest (CI config, values file): skipped
    result.findings.extend(findings)
    for doc in docs:
        if is_k8s_object(doc.data):
            result.resources.extend(resources_from_document(doc, rel))
            result.findings.extend(rejected_objects(doc, rel))
            result.findings.extend(_list_items_not_objects(doc, rel))
        elif id(doc) in broken:
            result.findings.append(input_finding(
                RULE_NOT_OBJECT, "document is not a Kubernetes object: apiVersion and kind "
                "must be non-empty strings as the Kubernetes decoder reads them (kubectl "
                "rejects it)", rel, doc.line, 1, Severity.WARNING))
        elif doc.data is not None and objects:
            what = "a mapping" if isinstance(doc.data, dict) else type(doc.data).__name__
            result.findings.append(input_finding(
                RULE_NOT_OBJECT,
                f"document is not a Kubernetes object ({what} without apiVersion and kind)",
                rel, doc.line, 1, Severity.WARNING,
            ))
    return result


