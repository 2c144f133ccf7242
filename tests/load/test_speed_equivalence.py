"""The fast loader paths (memoized tags, cached scalar values, inlined builder, paused
garbage collector) read YAML exactly like a plain reading with the same rules: the Kubernetes
decoder's scalars (checker.load.godecode) and a slow, obvious builder."""

from __future__ import annotations

import base64
import gc
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.load import godecode, load_paths, yamlfile
from checker.model import FieldPath

Write = Callable[[str, str], Path]

# Plain, quoted and tagged scalars whose YAML 1.1 type is easy to get wrong.
TRICKY = [
    "yes", "no", "on", "off", "Yes", "NO", "y", "n", "true", "True", "TRUE", "false",
    "0o17", "017", "0x1F", "0b101", "1_000", "+12", "-0", "0", "1:30", "-1:30:00",
    "190:20:30.15", ".inf", "-.Inf", ".NaN", "~", "null", "Null", "NULL", "", "1e3",
    "1.0e+3", "6.8523015e+5", "685.230_15e+03", "3.", "1.5", "'true'", '"yes"', "'1'",
    '"~"', "!!str 1", "!!str yes", "!!int '42'", "!!float 1", "!!bool yes", "!!null ''",
    "=", "~foo", "8080", "1.2.3", "0.0.0.0", "v1", "nullable", "yesterday", "100m",
    "64Mi", "'  spaced  '", '"\\u00e9"', "null # a comment", "--x", "0.5.1",
]
# Scalars that are not turned into Python objects: timestamps stay text and binary becomes
# the decoded text, as kubectl sends them (tests/test_decoder_oracle.py checks against it).
AS_TEXT = {"2024-01-01": "2024-01-01", "2001-12-14t21:59:43.10-05:00":
           "2001-12-14t21:59:43.10-05:00", "!!binary aGVsbG8=": "hello"}


def _parse(text: str) -> Any:
    (doc,) = yamlfile.parse_documents(text)
    assert isinstance(doc, yamlfile.Document), doc
    return doc


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _expected(scalar: str) -> Any:
    """What the Kubernetes decoder makes of ``scalar`` (the rules of checker.load.godecode,
    which tests/load/test_decoder_oracle.py checks against kubectl), computed without the memos:
    quoted text is text, a tag decides for tagged scalars, the rest is a plain scalar."""
    text = scalar.split(" #")[0]
    if text[:1] in ("'", '"'):
        return yaml.safe_load(f"a: {text}")["a"]
    if text.startswith("!!"):
        tag, _, rest = text.partition(" ")
        raw = yaml.safe_load(f"a: {rest}")["a"] if rest[:1] in ("'", '"') else rest
        if tag == "!!str":
            return raw
        return godecode.to_json(godecode.explicit(f"tag:yaml.org,2002:{tag[2:]}", raw))
    return godecode.to_json(godecode.resolve(text)[1])


@pytest.mark.parametrize("scalar", TRICKY)
def test_values_are_what_the_kubernetes_decoder_reads(scalar: str) -> None:
    """Every tricky scalar, as a value, a list item and after a first look-up, is what the
    Kubernetes decoder reads (the memo must not turn 'yes' quoted into yes plain)."""
    text = f"a: {scalar}\nb:\n- {scalar}\nc: {scalar}\n"
    try:
        expected = _expected(scalar)
    except godecode.Unrepresentable:  # .inf, .nan: kubectl cannot send them as JSON
        assert isinstance(next(yamlfile.parse_documents(text)), yamlfile.YamlProblem)
        return
    for _ in range(2):  # the second time every tag and value comes from the memo
        data = _parse(text).data
        assert _same(data["a"], expected), (scalar, data["a"], expected)
        assert _same(data["b"][0], expected)
        assert _same(data["c"], expected)


@pytest.mark.parametrize(("scalar", "text"), sorted(AS_TEXT.items()))
def test_timestamps_and_binary_are_text(scalar: str, text: str) -> None:
    """Dates and binary are not turned into date or bytes objects."""
    assert _parse(f"a: {scalar}\n").data == {"a": text}


def test_tags_equal_the_pure_python_safe_loader() -> None:
    """Every node of a document gets the tag PyYAML's own SafeLoader gives it."""
    text = "".join(f"k{i}: {s}\n" for i, s in enumerate(TRICKY + sorted(AS_TEXT)))
    text += "seq: [a, {b: c}]\nmap: {x: [1, 2]}\n? [complex]\n: key\n"

    def tags(node: yaml.Node) -> list[str]:
        out = [node.tag]
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out += tags(key) + tags(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                out += tags(item)
        return out

    expected = tags(yaml.compose(text, Loader=yaml.SafeLoader))
    for _ in range(2):  # cold, then from the memo
        assert tags(yaml.compose(text, Loader=yamlfile._Loader)) == expected


def test_keys_that_are_not_strings_become_their_text() -> None:
    """Ints, booleans and floats as keys are named as Kubernetes would read them (a null key
    is refused: tests/load/test_decoder_oracle.py)."""
    data = _parse("1: a\nyes: b\n1.5: d\n0o17: e\n010: f\n'2': g\n1e3: h\n").data
    assert list(data) == ["1", "true", "1.5", "15", "8", "2", "1000"]


def _reference(node: yaml.Node, path: FieldPath, spans: dict[FieldPath, Any]) -> Any:
    """A slow, obvious builder: value and key-start-to-value-end span of every field."""
    def mark(m: Any) -> tuple[int, int]:
        return m.line + 1, m.column + 1

    if isinstance(node, yaml.MappingNode):
        out = {}
        for key, value in node.value:
            value_of_key = _reference(key, (), {})
            if isinstance(value_of_key, bool) or value_of_key is None:
                name = {True: "true", False: "false", None: "null"}[value_of_key]
            else:
                name = str(value_of_key)
            spans[(*path, name)] = (*mark(key.start_mark), *mark(value.end_mark))
            out[name] = _reference(value, (*path, name), spans)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            spans[(*path, index)] = (*mark(item.start_mark), *mark(item.end_mark))
            items.append(_reference(item, (*path, index), spans))
        return items
    if node.tag.rsplit(":", 1)[-1] in ("str", "timestamp"):
        return node.value
    if node.tag.endswith(":binary"):
        return base64.b64decode(node.value).decode("utf-8", "replace")
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def test_every_span_matches_a_plain_builder() -> None:
    """Spans of keys, nested values, list items, flow and block styles are exact."""
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {a: b, c: d}\n"
        "spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n"
        "        - name: app\n          image: nginx\n          args: [a, 'b', \"c\"]\n"
        "          env:\n          - name: X\n            value: |\n              multi\n"
        "              line\n        - {name: side, ports: [{containerPort: 80}]}\n"
        "  empty: []\n  nothing:\n  1: one\n  yes: true\n"
    )
    doc = _parse(text)
    spans: dict[FieldPath, Any] = {}
    data = _reference(yaml.compose(text, Loader=yaml.SafeLoader), (), spans)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    spans[()] = (node.start_mark.line + 1, node.start_mark.column + 1,
                 node.end_mark.line + 1, node.end_mark.column + 1)
    assert doc.data == data
    assert doc.spans == spans


def test_node_limit_names_the_node_that_crosses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scalars counted inline count in document order: the sixth value names its line."""
    monkeypatch.setattr(yamlfile, "MAX_NODES_PER_DOCUMENT", 5)
    (problem,) = yamlfile.parse_documents("a: 1\nb: 2\nc:\n  d: 3\n  e: 4\nf: 5\n")
    assert isinstance(problem, yamlfile.YamlProblem)
    assert "more than 5 values" in problem.message and problem.line == 5
    (problem,) = yamlfile.parse_documents("- 1\n- 2\n- [3,\n   4]\n- 5\n- 6\n")
    assert isinstance(problem, yamlfile.YamlProblem) and problem.line == 4


@pytest.mark.parametrize(("text", "ok"), [
    ("a: {b: {c: 1}}\n", True), ("a: {b: {c: {d: 1}}}\n", False),
    ("[[[1]]]\n", True), ("[[[[1]]]]\n", False), ("a: [{b: 1}]\n", True),
    ("a: [{b: [1]}]\n", False), ("a: {b: {c: []}}\n", True),
])
def test_depth_limit_applies_to_scalars_too(monkeypatch: pytest.MonkeyPatch, text: str,
                                            ok: bool) -> None:
    """A scalar three levels down passes a limit of three; four levels do not."""
    monkeypatch.setattr(yamlfile, "MAX_DEPTH", 3)
    (item,) = yamlfile.parse_documents(text)
    assert isinstance(item, yamlfile.Document) is ok
    if not ok:
        assert isinstance(item, yamlfile.YamlProblem) and "nested more than 3" in item.message


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memos are cleared when full and never keep long values; results stay right."""
    monkeypatch.setattr(yamlfile, "_RESOLVED_MAX", 10)
    monkeypatch.setattr(yamlfile, "_GO_RESOLVED", {})
    monkeypatch.setattr(yamlfile, "_VALUES", {})
    text = "".join(f"k{i}: {i}\n" for i in range(50)) + f"long: {'9' * 200}\n"
    data = _parse(text).data
    assert data["k49"] == 49 and data["long"] == float("9" * 200)  # too big for int64: float
    assert 0 < len(yamlfile._GO_RESOLVED) <= 10 and len(yamlfile._VALUES) <= 10
    assert "9" * 200 not in yamlfile._GO_RESOLVED


@pytest.mark.parametrize(("value", "message"), [
    ("!!int abc", "'abc' is not a valid int"), ("!!bool maybe", "'maybe' is not a valid bool"),
    ("!!float x", "'x' is not a valid float"), ("!!int ''", "'' is not a valid int"),
])
def test_impossible_tagged_scalar_is_a_finding(write: Write, tmp_path: Path, value: str,
                                               message: str) -> None:
    """A scalar its tag cannot describe is a finding with line and column, not a crash."""
    write("bad.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n"
                      f"  key: {value}\n")
    write("good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n")
    result = load_paths([tmp_path], tmp_path)
    (finding,) = result.findings
    assert (finding.location.path, finding.location.line, finding.location.column) == \
        ("bad.yaml", 6, 8)
    assert finding.message == message
    assert [r.name for r in result.resources] == ["ok"]


def test_unknown_tags_on_scalars_stay_findings() -> None:
    """Tags PyYAML cannot construct are reported as before."""
    (problem,) = yamlfile.parse_documents("a: !custom x\n")
    assert isinstance(problem, yamlfile.YamlProblem)
    assert "could not determine a constructor for the tag '!custom'" in problem.message
    (problem,) = yamlfile.parse_documents("a: !!set x\n")
    assert isinstance(problem, yamlfile.YamlProblem) and "expected a mapping" in problem.message


@pytest.mark.parametrize("enabled", [True, False])
def test_load_restores_the_garbage_collector(write: Write, tmp_path: Path,
                                             enabled: bool) -> None:
    """Loading pauses the collector and leaves it as it found it."""
    write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert len(load_paths([tmp_path], tmp_path).resources) == 1
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
