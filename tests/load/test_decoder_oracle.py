"""Values are decoded as the API server receives them (issue 14, item 2), proven against the
real Kubernetes decoder: ``kubectl label --local -f FILE -o json`` decodes a file offline with
kubectl's own YAML/JSON decoder (sigs.k8s.io/yaml, go-yaml v2) and prints the JSON it would
send. Each test loads the same file with the checker and compares, value by value."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.load import load_paths
from checker.load.yamlfile import Document, YamlProblem, parse_documents

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

HEADER = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: oracle}\n"

# Scalars where PyYAML's YAML 1.1 and the Kubernetes decoder disagree, or nearly do.
SCALARS = [
    "y", "Y", "n", "N", "yes", "Yes", "YES", "no", "NO", "on", "On", "ON", "off", "OFF",
    "true", "True", "TRUE", "false", "FALSE", "tRUE", "yES", "nO", "t", "f", "o",
    "~", "null", "Null", "NULL", "nULL", "None",
    "0", "-0", "+0", "00", "007", "08", "09", "010", "0o0", "0o17", "0O17", "0o8", "-0o7",
    "0x1F", "0X1f", "-0x10", "+0x10", "0x", "0b101", "-0b11", "0b2", "1_000", "0x_1F", "1__0",
    "_1", "-_1", "1:30", "1:30:00", "190:20:30", "1e3", "1E3", "1e+3", "1e-3", "-1e3", "1.0",
    "1.", "1.5", "-1.5", "+1.5", ".5", "-.5", "+.5", ".5e3", "._5", "1_0.5", "0.1e1", "1e400",
    "1.0e+3", "12e", "1e", ".e3", ".", "..", "1.2.3", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "123456789012345678901234567890",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "12:30", "-",
    "+", "0.", "-0.0", "1e21", "1e20", "=", "<<x", "0777", "1_", "0b", "0o", "3.14159",
]
KEYS = ["y", "n", "on", "off", "true", "1", "0x10", "010", "1.5", "1e3", "0.1", "1e6",
        "-2.5e-7", "100000.0", "16777217.0", ".inf", "-.inf", ".nan", "2001-12-14", "1:30"]


def kubectl_json(path: Path) -> tuple[list[Any], str]:
    """Objects kubectl decodes from ``path`` (one per document) and its error output."""
    assert KUBECTL is not None
    proc = subprocess.run([KUBECTL, "label", "--local", "-f", str(path), "oracle=yes",
                           "-o", "json"], capture_output=True, text=True, timeout=120,
                          check=False)
    objects: list[Any] = []
    decoder = json.JSONDecoder()
    text, at = proc.stdout, 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            break
        value, at = decoder.raw_decode(text, at)
        objects.extend(value["items"] if value.get("kind") == "List" else [value])
    for obj in objects:
        labels = obj["metadata"].pop("labels")
        labels.pop("oracle")
        if labels:
            obj["metadata"]["labels"] = labels
    return objects, proc.stderr if proc.returncode else ""


def same(ours: Any, theirs: Any) -> bool:
    """Equal as the API server sees it: types distinct, except that numbers compare by value
    (kubectl prints 2^64-1, a float64 then, without a fraction)."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-15)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(same, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


def documents(path: Path) -> list[Document | YamlProblem]:
    return list(parse_documents(path.read_text(encoding="utf-8")))


def plain(scalar: str) -> bool:
    """``scalar`` reads back as one plain scalar in a block mapping value."""
    try:
        node = yaml.compose(f"k: {scalar}\n")
    except yaml.YAMLError:
        return False
    return (isinstance(node, yaml.MappingNode) and len(node.value) == 1
            and isinstance(node.value[0][1], yaml.ScalarNode)
            and node.value[0][1].value == scalar and node.value[0][1].style is None)


def compare_scalars(scalars: list[str], tmp_path: Path) -> None:
    """One file with every scalar as a value; the checker's values equal kubectl's."""
    usable = [s for s in dict.fromkeys(scalars) if plain(s)
              and s not in (".inf", "-.inf", "+.inf", ".nan", ".NaN", ".Inf", ".INF", ".NAN",
                            "-.Inf", "-.INF", "+.Inf", "+.INF")]
    body = "".join(f"  v{i}: {s}\n" for i, s in enumerate(usable))
    path = tmp_path / "scalars.yaml"
    path.write_text(HEADER + "data:\n" + body, encoding="utf-8")
    (theirs,), errors = kubectl_json(path)
    assert errors == ""
    (ours,) = documents(path)
    assert isinstance(ours, Document)
    wrong = {s: (ours.data["data"][f"v{i}"], theirs["data"][f"v{i}"])
             for i, s in enumerate(usable)
             if not same(ours.data["data"][f"v{i}"], theirs["data"][f"v{i}"])}
    assert wrong == {}


@needs_kubectl
def test_scalar_table_matches_kubectl(tmp_path: Path) -> None:
    """Booleans, nulls, octal/hex/binary/underscored integers, floats, sexagesimal-looking
    and timestamp-looking text: the checker reads each as kubectl does."""
    compare_scalars(SCALARS, tmp_path)


@needs_kubectl
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="0123456789+-._:xobeEoOyYnNtTfFaulL~", min_size=1,
                        max_size=8), min_size=50, max_size=200))
def test_random_scalars_match_kubectl(tmp_path: Path, scalars: list[str]) -> None:
    """Random number-like and boolean-like scalars, in batches of up to 200 per kubectl run."""
    compare_scalars(scalars, tmp_path)


@needs_kubectl
def test_mapping_keys_match_kubectl(tmp_path: Path) -> None:
    """Keys become JSON text as kubectl writes them: ``y`` is "true", ``1e6`` is "1e+06"."""
    path = tmp_path / "keys.yaml"
    path.write_text(HEADER + "data:\n" + "".join(f"  {k}: v{i}\n" for i, k in enumerate(KEYS)))
    (theirs,), errors = kubectl_json(path)
    assert errors == ""
    (ours,) = documents(path)
    assert isinstance(ours, Document)
    assert same(ours.data, theirs)  # y and true, n and off: last wins in both
    assert ours.data["data"]["true"] == "v4" and ours.data["data"]["1e+06"] == "v11"


@needs_kubectl
@pytest.mark.parametrize("value", ["data: {k: .inf}", "data: {k: -.Inf}", "data: {k: .nan}",
                                   "data: {~: v}", "data: {18446744073709551615: v}"])
def test_what_kubectl_rejects_is_a_finding(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEADER + value + "\n")
    objects, errors = kubectl_json(path)
    assert objects == [] and errors
    (finding,) = load_paths([path], tmp_path).findings
    assert finding.rule_id == "input.parse-error" and finding.location.line == 4


MERGES = {
    "override after": "b: &b {k: 1, j: 2}\nc:\n  k: 0\n  <<: *b\n  m: 3\n",
    "list, earlier wins": "b: &b {k: 1, j: 2}\nc:\n  <<: [*b, {k: 5, z: 6}]\n  j: 9\n",
    "nested merge": "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, x: 3}\n",
    "quoted is a key": "c: {\"<<\": 1, k: 2}\n",
    "explicit wins": "b: &b {k: 1}\nc:\n  <<: *b\n  k: 2\n",
}


@needs_kubectl
@pytest.mark.parametrize("body", list(MERGES.values()), ids=list(MERGES))
def test_merge_keys_expand_as_kubectl_expands_them(tmp_path: Path, body: str) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(HEADER + body)
    (theirs,), errors = kubectl_json(path)
    assert errors == ""
    (ours,) = documents(path)
    assert isinstance(ours, Document) and same(ours.data, theirs)


def test_merged_fields_keep_the_position_where_they_are_written(tmp_path: Path) -> None:
    """A policy finding on a merged field points at the anchor's line, not at ``<<``."""
    path = tmp_path / "pod.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                    "x-defaults: &sc\n  privileged: y\n  runAsUser: 0o0\n"
                    "spec:\n  containers:\n    - name: c\n      image: nginx:1.27\n"
                    "      securityContext:\n        <<: *sc\n        readOnlyRootFilesystem: Y\n")
    (res,) = load_paths([path], tmp_path).resources
    context = res.body["spec"]["containers"][0]["securityContext"]
    assert context == {"privileged": True, "runAsUser": 0, "readOnlyRootFilesystem": True}
    sc = ("spec", "containers", 0, "securityContext")
    assert res.locate((*sc, "privileged")).line == 5
    assert res.locate((*sc, "runAsUser")).line == 6
    assert res.locate((*sc, "readOnlyRootFilesystem")).line == 13


@needs_kubectl
def test_duplicate_yaml_key_last_wins_with_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(HEADER + "data:\n  a: x\n  b: y\n  a: z\n")
    (theirs,), _ = kubectl_json(path)
    result = load_paths([path], tmp_path)
    (res,) = result.resources
    assert same(res.body, theirs) and res.body["data"] == {"b": True, "a": "z"}
    assert res.locate(("data", "a")).line == 7
    (finding,) = result.findings
    assert (finding.rule_id, finding.location.line) == ("input.duplicate-key", 7)


JSON_CASES = {
    "duplicate key": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},\n'
                     ' "data": {"a": "1", "a": "2"}}\n',
    "lone surrogate": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},\n'
                      ' "data": {"a": "\\ud800", "b": "\\ud83d\\ude00"}}\n',
    "numbers": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},\n'
               ' "n": [1e3, 1.0, -0, 1.5, 9223372036854775807, 9223372036854775808, 1E2]}\n',
    "stream": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}\n'
              '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"},'
              ' "data": {"k": "v", "k": "w"}}{"apiVersion": "v1", "kind": "ConfigMap",'
              ' "metadata": {"name": "z"}}\n',
    "yes stays text": '  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},'
                      ' "data": {"y": "y"}, "privileged": "y"}\n',
}


@needs_kubectl
@pytest.mark.parametrize("text", list(JSON_CASES.values()), ids=list(JSON_CASES))
def test_json_manifests_decode_as_kubectl_decodes_them(tmp_path: Path, text: str) -> None:
    """JSON the YAML parser rejected vanished without a finding; now it is checked."""
    path = tmp_path / "m.json"
    path.write_text(text)
    theirs, errors = kubectl_json(path)
    assert errors == ""
    result = load_paths([path], tmp_path)
    assert len(result.resources) == len(theirs)
    for res, obj in zip(result.resources, theirs, strict=True):
        assert same(res.body, obj), (res.body, obj)


def test_json_duplicates_and_surrogates_are_findings_with_lines(tmp_path: Path) -> None:
    (tmp_path / "dup.json").write_text(JSON_CASES["duplicate key"])
    (tmp_path / "sur.json").write_text(JSON_CASES["lone surrogate"])
    result = load_paths([tmp_path], tmp_path)
    got = sorted((f.rule_id, f.location.path, f.location.line, f.severity.name)
                 for f in result.findings)
    assert got == [("input.duplicate-key", "dup.json", 2, "WARNING"),
                   ("input.invalid-text", "sur.json", 2, "WARNING")]
    dup = next(r for r in result.resources if r.location.path == "dup.json")
    assert dup.body["data"] == {"a": "2"} and dup.locate(("data", "a")).line == 2
    assert dup.locate(("data", "a")).column == 21  # the last "a", which is what counts
    sur = next(r for r in result.resources if r.location.path == "sur.json")
    assert sur.body["data"] == {"a": "\ufffd", "b": "\U0001F600"}


def test_unparseable_json_manifest_is_a_finding_but_other_json_is_skipped(
        tmp_path: Path) -> None:
    (tmp_path / "tsconfig.json").write_text('{\n  // comment\n  "compilerOptions": {}\n}\n')
    (tmp_path / "broken.json").write_text('{"apiVersion": "v1", "kind": "Pod",\n  "x": [}\n')
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert (finding.location.path, finding.rule_id) == ("broken.json", "input.parse-error")
    assert finding.location.line == 2


@pytest.mark.parametrize("body", [*MERGES.values(), "data:\n  a: {x: 1, y: [1, 2]}\n  b: 2\n"
                                  "  a: {z: 3}\n  c: {d: 1, d: {e: 2}}\n"])
def test_merged_and_repeated_keys_cross_processes_intact(body: str) -> None:
    """Parallel loading packs documents (data as JSON, spans in the parser's order): after a
    merge or a repeated key, the order still lines up and no span of a dropped value stays."""
    from checker.load.packed import PackedDocument, pack

    (doc,) = parse_documents(HEADER + body)
    assert isinstance(doc, Document)
    packed = pack(doc)
    assert isinstance(packed, PackedDocument)
    assert dict(packed.unpack().spans) == dict(doc.spans)
    paths: set[tuple[Any, ...]] = set()
    stack: list[tuple[tuple[Any, ...], Any]] = [((), doc.data)]
    while stack:
        at, value = stack.pop()
        paths.add(at)
        items = value.items() if isinstance(value, dict) else (
            enumerate(value) if isinstance(value, list) else ())
        stack += [((*at, k), v) for k, v in items]
    assert set(doc.spans) == paths


BINARY = {
    "plain": "!!binary aGVsbG8=",
    "lines": "!!binary |\n    aGVs\n    bG8=",
    "empty": '!!binary ""',
    "not utf-8": '!!binary "/w=="',
    "truncated utf-8": '!!binary "4oI="',
}


@needs_kubectl
@pytest.mark.parametrize("value", list(BINARY.values()), ids=list(BINARY))
def test_binary_scalars_decode_as_kubectl_decodes_them(tmp_path: Path, value: str) -> None:
    """``!!binary`` is base64-decoded text, invalid UTF-8 bytes each as U+FFFD, as kubectl
    sends it: a policy reading the value sees what the API server stores."""
    path = tmp_path / "bin.yaml"
    path.write_text(HEADER + f"data:\n  k: {value}\n  !!binary aGk=: v\n")
    (theirs,), errors = kubectl_json(path)
    assert errors == ""
    (ours,) = documents(path)
    assert isinstance(ours, Document)
    assert ours.data["data"] == theirs["data"]


@needs_kubectl
@pytest.mark.parametrize("value", ['"aGVs bG8="', '"aGVsbG8"', '"aGk=aGk="', '"=aGk"'])
def test_invalid_base64_is_rejected_as_kubectl_rejects_it(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bin.yaml"
    path.write_text(HEADER + f"data:\n  k: !!binary {value}\n")
    objects, errors = kubectl_json(path)
    assert objects == [] and "base64" in errors
    (finding,) = load_paths([path], tmp_path).findings
    assert finding.rule_id == "input.parse-error" and finding.location.line == 5
    assert "base64" in finding.message


METADATA = {
    "number name": "metadata:\n  name: 5\n",
    "bool namespace": "metadata:\n  name: a\n  namespace: true\n",
    "number label": "metadata:\n  name: a\n  labels:\n    tier: 1\n",
    "bool annotation": "metadata:\n  name: a\n  annotations:\n    x: yes\n",
    "list labels": "metadata:\n  name: a\n  labels: [a]\n",
}


@needs_kubectl
@pytest.mark.parametrize("meta", list(METADATA.values()), ids=list(METADATA))
def test_metadata_the_decoder_rejects_is_an_error_with_its_line(tmp_path: Path,
                                                                 meta: str) -> None:
    """``ObjectMeta`` is typed: kubectl (and Flux's, Argo CD's apply) refuse such an object,
    so it is an error at the field's line, never an object with an empty name."""
    path = tmp_path / "meta.yaml"
    good = tmp_path / "good.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\n" + meta)
    good.write_text(HEADER)
    objects, errors = kubectl_json(path)
    assert objects == [] and "cannot unmarshal" in errors
    result = load_paths([path, good], tmp_path)
    assert [r.name for r in result.resources] == ["oracle"]  # the other file still loads
    (finding,) = result.findings
    assert finding.rule_id == "input.parse-error" and finding.severity.label == "error"
    last = meta.rstrip("\n").count("\n") + 3
    assert finding.location.path == "meta.yaml" and finding.location.line == last
