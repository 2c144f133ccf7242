"""The Markdown job summary stays under GitHub's 1 MiB (the runner drops a larger one):
every table is capped by the assemble stage and says how many rows it did not show.

A fleet-sized report: 16,505 accepted findings (what made a 4.8 MB summary before), 300
clusters, thousands of drifted fields, inputs, exemptions and errors, and long texts.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from checker import assemble
from checker.model import (
    Coverage,
    Exemption,
    Finding,
    ObjectRef,
    Report,
    Rule,
    Severity,
    SourceLocation,
    Suppression,
)
from checker.report import RENDERERS, markdown

RULES = {"demo-tag": Rule("demo-tag", "Tag", Severity.ERROR, pack="demo"),
         "drift.modified": Rule("drift.modified", "Modified", Severity.ERROR)}
CLUSTERS = tuple(f"cluster-{n:03d}" for n in range(300))


def _finding(i: int, *, cluster: str = "", category: str = "policy", text: str = "",
             accepted: bool = False) -> Finding:
    ref = ObjectRef(cluster, "apps", "v1", "Deployment", f"team-{i % 40}", f"svc-{i}")
    f = Finding("drift.modified" if category == "drift" else "demo-tag", category,
                Severity.ERROR if i % 3 else Severity.WARNING,
                text or f"image of container app-{i} has the mutable tag latest",
                SourceLocation(f"apps/team-{i % 40}/svc-{i}/deployment.yaml", 10 + i % 20),
                resource=ref.display, cluster=cluster, ref=ref,
                details={"change": "modified", "field": "spec.replicas", "before": 2,
                         "after": 3} if category == "drift" else {})
    if accepted:
        f = replace(f, suppression=Suppression("file", "reviewed with the platform team "
                                               * 3, owner="team-a", expires="2027-01-01"))
    return f


def _fleet(long_text: str = "") -> Report:
    findings = [_finding(i, cluster=CLUSTERS[i % 300], accepted=True, text=long_text)
                for i in range(16_505)]
    findings += [_finding(i, cluster=CLUSTERS[i % 300], text=long_text) for i in range(6_000)]
    findings += [_finding(i, cluster=CLUSTERS[i % 300], category="drift", text=long_text)
                 for i in range(3_000)]
    coverage = tuple(Coverage("not-checked", "helm", f"chart {i} {long_text}", f"apps/{i}.yaml",
                              reason="remote chart not allowed") for i in range(2_000))
    exemptions = tuple(Exemption(CLUSTERS[i % 300], f"policy-{i}", (f"ns-{i}", "kube-system"),
                                 f"pack demo {i}") for i in range(2_000))
    return assemble.assemble(Report(
        findings=tuple(findings), rules=RULES, resources_checked=25_505, files_checked=9_000,
        packs=("demo",), clusters=CLUSTERS, group_by="cluster", coverage=coverage,
        exemptions=exemptions, errors=tuple(f"apps/{i}.yaml:1: bad YAML {long_text}"
                                            for i in range(1_500)),
        link_base="https://github.com/o/r/blob/0123456789abcdef0123456789abcdef01234567"))


def test_a_fleet_sized_summary_is_under_one_mebibyte() -> None:
    """Every table is capped and ends with an "and N more" line that points at the JSON
    report; the counts above the tables still count everything."""
    report = _fleet()
    text = RENDERERS["markdown"](report)
    size = len(text.encode("utf-8"))
    assert size <= assemble.SUMMARY_MAX_BYTES < assemble.SUMMARY_LIMIT_BYTES, size
    more = {m.group(2): int(m.group(1)) for m in
            re.finditer(r"…and (\d+) more (.+?) not shown here: the JSON report", text)}
    caps = report.caps
    assert more["accepted risks"] == 16_505 - caps["accepted"]
    assert more["findings"] == 9_000 - caps["top"]
    assert more["drifted fields"] == 3_000 - caps["drift"]
    assert more["inputs"] == 2_000 - caps["coverage"]
    assert more["errors"] == 1_500 - caps["errors"]
    assert more["clusters"] == 300 - caps["clusters"]
    assert more["exemption groups"] > 0
    assert "findings of this cluster" in more
    assert "| accepted risk | 16505 |" in text  # the counts are whole
    assert text.count("\n### Cluster ") == caps["clusters"]


def test_long_texts_are_cut_and_the_caps_shrink_until_it_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts of 5,000 characters in every row: cells end in "…"; with a budget the default
    caps do not meet (300,000 bytes here), the assemble stage halves them until the rendered
    summary is under it."""
    monkeypatch.setattr(assemble, "SUMMARY_MAX_BYTES", 300_000)
    report = _fleet(long_text="x" * 5_000)
    text = RENDERERS["markdown"](report)
    assert len(text.encode("utf-8")) <= 300_000
    assert "x" * (markdown.CELL_MAX + 1) not in text and "x…" in text
    assert report.caps["accepted"] < assemble.SUMMARY_CAPS["accepted"]
    assert f"…and {16_505 - report.caps['accepted']} more accepted risks" in text


def test_a_small_summary_is_not_cut() -> None:
    """Under every cap nothing is left out and no "more" line is written."""
    findings = tuple(_finding(i, cluster="a") for i in range(10))
    report = assemble.assemble(Report(findings=findings, rules=RULES, resources_checked=10,
                                      files_checked=10, clusters=("a",), group_by="cluster"))
    text = RENDERERS["markdown"](report)
    assert "more" not in text
    assert report.caps == assemble.SUMMARY_CAPS
    assert text.count("| `demo-tag` |") == 20  # every finding in the top and in its cluster
