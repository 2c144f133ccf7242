"""Loading a large repository in several processes gives exactly what one process gives."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from checker.load import load_paths, loader, yamlfile
from checker.load.packed import PackedDocument, PackedSpans, pack
from checker.parallel import can_fork

TRICKY = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: tricky-{n}
  namespace: team
  labels: &labels {{app: "a{n}", "tier": web}}
  annotations:
    note: "é ☃ \\u00e9 \\U0001F600"
    folded: >
      several
      lines
data:
  yes: "yes"
  off: on
  big: "{big}"
  octal: 0o17
  short: y
  int: 123456789012345678901234567890
  when: 2024-01-01
  bin: !!binary aGVsbG8=
  empty: ""
  nothing: ~
  list: [1, 2.5, true, null, "x", [], {{}}]
  again: *labels
---
# a comment-only document
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {{name: svc-{n}, namespace: team}}
  spec: {{ports: [{{port: 80}}]}}
- not: an object
---
just: a mapping without apiVersion
"""


def write_repo(root: Path, files: int) -> None:
    for n in range(files):
        (root / f"f{n:03d}.yaml").write_text(TRICKY.format(n=n, big=9 ** 40), encoding="utf-8")
    (root / "broken.yaml").write_text("a: [unclosed\n", encoding="utf-8")
    (root / "dup.yaml").write_text("apiVersion: v1\nkind: X\nmetadata: {name: d}\nk: 1\nk: 2\n",
                                   encoding="utf-8")
    (root / "obj.json").write_text('{"apiVersion": "v1", "kind": "Namespace", '
                                   '"metadata": {"name": "j"}}', encoding="utf-8")
    (root / "values.yaml").write_text("replicas: 3\n", encoding="utf-8")
    (root / "empty.yaml").write_text("", encoding="utf-8")


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.skipif(not can_fork(), reason="fork is not available on this platform")
def test_parallel_load_equals_serial_load(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_repo(tmp_path, 40)
    serial = load_paths([tmp_path], tmp_path)
    forked: list[int] = []
    real = loader.fork_map

    def counting(func: Any, items: Any) -> Any:
        forked.append(len(items))
        return real(func, items)

    monkeypatch.setattr(loader, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(loader, "available_cpus", lambda: 3)
    monkeypatch.setattr(loader, "fork_map", counting)
    parallel = load_paths([tmp_path], tmp_path)
    assert forked == [3]
    assert parallel.files == serial.files
    assert parallel.findings == serial.findings
    # .inf and .nan are refused as kubectl refuses them (tests/load/test_decoder_oracle.py); dup.yaml
    # loads with its last value and a warning
    assert len(serial.findings) >= 3 and len(serial.resources) == 40 * 2 + 2
    assert len(parallel.resources) == len(serial.resources)
    for p, s in zip(parallel.resources, serial.resources, strict=True):
        assert (p.api_version, p.kind, p.namespace, p.name, p.location) == (
            s.api_version, s.kind, s.namespace, s.name, s.location)
        assert same(dict(p.body), dict(s.body))
        assert dict(p.marks) == dict(s.marks)  # every field's position, decoded from the pack
    assert any(isinstance(r.marks._spans, PackedSpans)  # type: ignore[attr-defined]
               for r in parallel.resources)


def test_pack_round_trip_and_refusals() -> None:
    (doc,) = yamlfile.parse_documents(TRICKY.split("---")[0].format(n=1, big=7))
    assert isinstance(doc, yamlfile.Document)
    packed = pack(doc)
    assert isinstance(packed, PackedDocument)
    back = packed.unpack()
    assert same(back.data, doc.data) and dict(back.spans) == dict(doc.spans)
    assert back.spans[()] == doc.spans[()] and (back.line, back.end_line) == (doc.line,
                                                                             doc.end_line)
    odd = yamlfile.Document({"k": {1, 2}}, {("k",): (1, 1, 1, 2), (): (1, 1, 2, 1)}, 1, 1)
    assert pack(odd) is odd  # a set is not JSON: sent as it is
    unordered = yamlfile.Document({"k": 1}, {(): (1, 1, 2, 1), ("k",): (1, 1, 1, 2)}, 1, 1)
    assert pack(unordered) is unordered  # not in the parser's order


def test_spans_that_do_not_fit_are_an_error_not_a_wrong_line() -> None:
    spans = PackedSpans('{"a": 1, "b": 2}', bytes(16), (1, 1, 1, 1))
    with pytest.raises(RuntimeError, match="do not fit"):
        spans[("a",)]
