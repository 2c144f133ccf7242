"""Pairing of head and base findings by identity: new, unchanged, absent."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checker.delta import classify, mark
from checker.model import (
    ABSENT,
    NEW,
    UNCHANGED,
    Finding,
    ObjectRef,
    Report,
    Severity,
    SourceLocation,
)


def finding(line: int = 3, *, rule: str = "pss-privileged", name: str = "web",
            cluster: str = "prod", path: tuple[str | int, ...] = ("spec", "x"),
            message: str = "privileged container", file: str = "apps/web.yaml") -> Finding:
    ref = ObjectRef.of("apps/v1", "Deployment", "shop", name, cluster)
    return Finding(rule, "policy", Severity.ERROR, message, SourceLocation(file, line),
                   resource=f"Deployment shop/{name}", field_path=path, cluster=cluster,
                   ref=ref)


def test_identity_ignores_lines_and_served_version() -> None:
    a = finding(3)
    b = replace(finding(40), ref=ObjectRef.of("apps/v1beta2", "Deployment", "shop", "web",
                                              "prod"))
    assert a.identity == b.identity
    assert a.location != b.location


@pytest.mark.parametrize("other", [
    finding(rule="pss-host-network"), finding(name="api"), finding(cluster="stage"),
    finding(path=("spec", "y")), finding(message="privileged container 'sidecar'"),
])
def test_identity_tells_distinct_findings_apart(other: Finding) -> None:
    assert finding().identity != other.identity


def test_identity_drops_positions_from_messages() -> None:
    a = Finding("input.yaml", "input", Severity.ERROR, "apps/a.yaml:3:1: bad indent at line 3",
                SourceLocation("apps/a.yaml", 3))
    b = replace(a, message="apps/a.yaml:9:5: bad indent at line 9",
                location=SourceLocation("apps/a.yaml", 9))
    c = replace(a, message="apps/a.yaml:9:5: tab character at line 9")
    assert a.identity == b.identity
    assert a.identity != c.identity
    # a colon that is not a file position stays: an image tag tells two findings apart
    img = replace(a, message="image nginx:1.25 is not allowed")
    assert img.identity != replace(a, message="image nginx:1.26 is not allowed").identity


def test_mark_pairs_by_identity_and_counts_repeats() -> None:
    head = [finding(5), finding(5), finding(7, name="api")]
    base = [finding(3), finding(9, name="db"), finding(9, name="db")]
    marked, fixed = mark(head, base)
    assert [f.baseline for f in marked] == [UNCHANGED, NEW, NEW]
    assert [(f.ref.name if f.ref else "", f.baseline) for f in fixed] == [
        ("db", ABSENT), ("db", ABSENT)]
    # the head's own positions are kept, not the base's
    assert marked[0].location.line == 5


def test_classify_sets_base_and_fixed() -> None:
    head = Report(findings=(finding(),), rules={}, resources_checked=1, files_checked=1)
    base = replace(head, findings=(finding(), finding(name="db")))
    out = classify(head, base, "a" * 40)
    assert out.base == "a" * 40
    assert [f.baseline for f in out.findings] == [UNCHANGED]
    assert [f.ref.name for f in out.fixed if f.ref] == ["db"]
    assert out.new == () and out.unchanged == out.findings
    # without a base every active finding counts as new and none as unchanged
    assert head.new == head.active and head.unchanged == ()


def test_classify_needs_a_base_name() -> None:
    r = Report(findings=(), rules={}, resources_checked=0, files_checked=0)
    with pytest.raises(ValueError):
        classify(r, r, "")
