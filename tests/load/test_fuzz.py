"""Fuzzing the loader (issue 14, item 8): random YAML/JSON bytes and structured mutations of
the real manifests in tests/fixtures and examples/. Properties, for every input:

- no crash: ``load_paths`` returns, whatever the bytes;
- no hang: each example is bounded by hypothesis's deadline;
- no lost file: a file that holds, or starts to hold, a Kubernetes object (an independent
  reading, PyYAML's or JSON's, finds a mapping with ``apiVersion`` and ``kind``) gives
  resources or a finding naming that file;
- every finding names the file, at a line inside it.

The suite runs a short, derandomized campaign (150 examples per test, about 2 seconds); a long
random one is run with ``GITOPS_CHECKER_FUZZ_EXAMPLES=N`` (its length and result are recorded
in the docs).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.load import load_paths
from tests.conftest import ROOT

CORPUS = sorted(p for folder in (ROOT / "tests" / "fixtures", ROOT / "examples")
                for p in folder.rglob("*.y*ml") if p.is_file())
CAMPAIGN = os.environ.get("GITOPS_CHECKER_FUZZ_EXAMPLES")
FUZZ_EXAMPLES = int(CAMPAIGN or "150")
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=20_000, derandomize=CAMPAIGN is None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

# Scalars that decoders read differently, and YAML/JSON syntax fragments.
TOKENS = ["y", "Y", "n", "on", "off", "0o0", "0o17", "0x1F", "010", "1e3", "1:30", ".inf",
          ".nan", "~", "null", "<<", "*a", "&a", "!!int", "!!str", "!!binary", "!custom",
          "---", "...", "- ", ": ", "{", "}", "[", "]", ",", "\"", "'", "#", "|", ">", "\t",
          "\\ud800", "\\u0000", "\ufeff", "\x00", "\x85", "\u2028", '"a": 1, "a": 2',
          "apiVersion: v1", "kind: Pod", '"apiVersion": "v1"', '"kind": "Pod"', "\n", "  "]


def _starts_an_object(raw: bytes) -> bool:
    """Does an independent reader see a mapping with apiVersion and kind in ``raw``?"""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    found: list[Any] = []
    with contextlib.suppress(ValueError, RecursionError):
        found.append(json.loads(text))
    try:
        for doc in yaml.safe_load_all(text):
            found.append(doc)
    except Exception:  # PyYAML's own crashes ('!!int' alone: IndexError) are not ours
        pass  # a reader that stops still saw the documents before
    stack = list(found)
    while stack:  # kind: List items count too
        item = stack.pop()
        if isinstance(item, dict):
            items = item.get("items")
            if item.get("kind") == "List" or (str(item.get("kind", "")).endswith("List")
                                              and isinstance(items, list)):
                # a List holds its items (one without items holds nothing), as kubectl reads it
                stack += items if isinstance(items, list) else []
            elif "apiVersion" in item and "kind" in item:
                return True
    return False


def check_file(root: Path, name: str, raw: bytes) -> None:
    """Load one file; the properties of the module docstring hold."""
    path = root / name
    path.write_bytes(raw)
    try:
        result = load_paths([root], root)
    finally:
        path.unlink()
    lines = raw.count(b"\n") + 1
    for finding in result.findings:
        assert finding.location.path == name, finding
        assert 1 <= finding.location.line <= lines + 1, finding
    for res in result.resources:
        assert res.location.path == name
        assert 1 <= res.location.line <= lines + 1
        json.dumps(res.body, allow_nan=False)  # what the API server receives is JSON
    if _starts_an_object(raw):
        assert result.resources or result.findings, f"lost file: {raw[:300]!r}"


@FUZZ
@given(raw=st.binary(max_size=600), suffix=st.sampled_from([".yaml", ".json"]))
def test_random_bytes(tmp_path: Path, raw: bytes, suffix: str) -> None:
    check_file(tmp_path, "f" + suffix, raw)


@FUZZ
@given(parts=st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=60),
       suffix=st.sampled_from([".yaml", ".json"]))
def test_random_token_soup(tmp_path: Path, parts: list[str], suffix: str) -> None:
    check_file(tmp_path, "f" + suffix, "".join(parts).encode("utf-8", "surrogatepass"))


def _mutate(lines: list[str], rng: random.Random, steps: int) -> list[str]:
    for _ in range(steps):
        if not lines:
            lines = [""]
        at = rng.randrange(len(lines))
        kind = rng.randrange(9)
        if kind == 0:
            del lines[at]
        elif kind == 1:
            lines.insert(at, lines[rng.randrange(len(lines))])  # a repeated key or document
        elif kind == 2:
            other = rng.randrange(len(lines))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == 3:  # a value the decoders read differently
            head, sep, _ = lines[at].partition(": ")
            lines[at] = f"{head}{sep or ': '}{rng.choice(TOKENS[:18])}"
        elif kind == 4:
            cut = rng.randrange(len(lines[at]) + 1)
            lines[at] = lines[at][:cut] + rng.choice(TOKENS) + lines[at][cut:]
        elif kind == 5:
            lines[at] = " " * rng.randrange(6) + lines[at].lstrip()
        elif kind == 6:
            lines = lines[:at + 1]  # truncated
        elif kind == 7:
            lines.insert(at, "---")
        else:  # an anchor and its aliases
            lines.insert(at, "x-a: &a [x, x, x, x]")
            lines.insert(at + 1, "x-b: [*a, *a, *a, *a]")
    return lines


@FUZZ
@given(index=st.integers(min_value=0), seed=st.integers(min_value=0, max_value=2**32),
       steps=st.integers(min_value=1, max_value=8))
def test_mutated_real_manifests(tmp_path: Path, index: int, seed: int, steps: int) -> None:
    source = CORPUS[index % len(CORPUS)]
    lines = source.read_text(encoding="utf-8").splitlines()
    mutated = _mutate(lines, random.Random(seed), steps)
    check_file(tmp_path, "m.yaml", ("\n".join(mutated) + "\n").encode())  # not a kustomization


@FUZZ
@given(index=st.integers(min_value=0), seed=st.integers(min_value=0, max_value=2**32),
       steps=st.integers(min_value=0, max_value=6))
def test_mutated_real_manifests_as_json(tmp_path: Path, index: int, seed: int,
                                        steps: int) -> None:
    """The same manifests as JSON (what kubectl reads as a JSON stream), then mutated: repeated
    keys, lone surrogates, numbers, truncation, garbage."""
    source = CORPUS[index % len(CORPUS)]
    try:
        docs = [d for d in yaml.safe_load_all(source.read_text(encoding="utf-8"))
                if d is not None]
    except yaml.YAMLError:
        return
    text = "\n".join(json.dumps(d, default=str, indent=1) for d in docs)
    rng = random.Random(seed)
    for _ in range(steps):
        at = rng.randrange(len(text) + 1)
        choice = rng.randrange(5)
        if choice == 0:
            text = text[:at]
        elif choice == 1:
            text = text[:at] + rng.choice(['"\\ud800"', '"\\udc00x"', "1e3", "-0", "1e400",
                                           "NaN", "18446744073709551616"]) + text[at:]
        elif choice == 2:
            line_start = text.rfind("\n", 0, at) + 1
            line_end = text.find("\n", at)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            text = text[:line_start] + line + "\n" + text[line_start:]  # a repeated key
        elif choice == 3:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        else:
            text = text[:at] + text[at + rng.randrange(1, 20):]
    check_file(tmp_path, "m.json", text.encode("utf-8", "surrogatepass"))


def test_what_the_campaign_found(tmp_path: Path) -> None:
    """Cases the long campaign found, kept as plain regression tests: a List item that is not
    an object is a finding (it vanished); a parse error at the end of a file without a final
    newline names a line of the file (it named the one after); '!!int' alone is a finding; a
    List whose own apiVersion is broken, around objects, is a finding (it vanished)."""
    (tmp_path / "list.yaml").write_text("apiVersion: v1\nkind: List\nitems:\n- {kind: Pod}\n"
                                        "- apiVersion: v1\n  kind: Namespace\n"
                                        "  metadata: {name: a}\n")
    (tmp_path / "empty-list.yaml").write_text("apiVersion: v1\nkind: List\nitems:\n")
    (tmp_path / "cut.json").write_text('{"apiVersion": "v1",\n "kind": "Pod",\n "x": [')
    (tmp_path / "int.yaml").write_text("!!int")
    result = load_paths([tmp_path], tmp_path)
    assert [r.name for r in result.resources] == ["a"]
    got = sorted((f.location.path, f.location.line, f.rule_id) for f in result.findings)
    assert got == [("cut.json", 3, "input.parse-error"), ("int.yaml", 1, "input.parse-error"),
                   ("list.yaml", 4, "input.not-an-object")]
    alone = tmp_path / "alone"
    alone.mkdir()
    for name, raw in (("cut.json", b'{"a":\n ['), ("int.yaml", b"!!int"),
                      ("m.yaml", b"apiVersion: v1\nkind: List\nitems:\n"),
                      ("l.yaml", b'apiVersi"on: v1\nkind: List\nitems:\n- apiVersion: v1\n'
                                 b'  kind: Namespace\n  metadata: {name: cache}\n')):
        check_file(alone, name, raw)
