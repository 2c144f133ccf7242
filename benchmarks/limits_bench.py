"""Benchmark: a fleet-sized report within GitHub's limits (SARIF runs, results, compressed size).

Usage: python benchmarks/limits_bench.py [CLUSTERS] [FINDINGS_PER_CLUSTER]

Builds CLUSTERS clusters (default 19) of FINDINGS_PER_CLUSTER (default 25,000) synthetic policy
findings with realistic messages, paths and objects, assembles the report, renders SARIF and
prints the runs, the results kept, the uncompressed and gzip-compressed sizes, what the uncut
file would have been, and the time of each step.
"""

from __future__ import annotations

import gzip
import sys
import time

from checker import assemble
from checker.model import Finding, ObjectRef, Report, Rule, Severity, SourceLocation
from checker.report import RENDERERS

RULES = {"bp-probes": Rule("bp-probes", "Probes", Severity.WARNING, pack="best-practice"),
         "pss-privileged": Rule("pss-privileged", "Privileged", Severity.ERROR,
                                pack="pss-baseline")}


def fleet(clusters: int, per_cluster: int) -> Report:
    """The unassembled report of a synthetic fleet."""
    names = tuple(f"prod-eu-{n:03d}" for n in range(clusters))
    findings = []
    for cluster in names:
        for i in range(per_cluster):
            ref = ObjectRef(cluster, "apps", "v1", "Deployment", f"team-{i % 50}", f"svc-{i}")
            error = i % 10 == 0
            findings.append(Finding(
                "pss-privileged" if error else "bp-probes", "policy",
                Severity.ERROR if error else Severity.WARNING,
                f"container app-{i} is privileged" if error else
                f"container app-{i} must declare a livenessProbe",
                SourceLocation(f"apps/team-{i % 50}/svc-{i}/deployment.yaml", 20 + i % 30, 11),
                resource=ref.display, field_path=("spec", "template", "spec", "containers", 0),
                pack="pss-baseline" if error else "best-practice", cluster=cluster, ref=ref))
    return Report(findings=tuple(findings), rules=RULES, resources_checked=len(findings),
                  files_checked=len(findings), clusters=names, group_by="cluster",
                  sarif_category="gitops-checker", tool_version="1.0.0")


def main() -> None:
    clusters = int(sys.argv[1]) if len(sys.argv) > 1 else 19
    per_cluster = int(sys.argv[2]) if len(sys.argv) > 2 else 25_000
    raw = fleet(clusters, per_cluster)
    start = time.perf_counter()
    report = assemble.assemble(raw)
    assembled = time.perf_counter()
    text = RENDERERS["sarif"](report).encode("utf-8")
    rendered = time.perf_counter()
    packed = len(gzip.compress(text, compresslevel=6))
    parts = report.selections[assemble.SARIF]
    uncut = assemble.sarif_selection(raw, max_bytes=None)
    uncut_size = assemble.sarif_size(raw, uncut)
    print(f"clusters {clusters}, findings {len(raw.findings)}: {len(parts)} runs, "
          f"{sum(len(p.kept) for p in parts)} results kept; {len(text)} bytes, "
          f"{packed} gzip-compressed (limit {assemble.SARIF_LIMIT_BYTES}, budget "
          f"{assemble.SARIF_MAX_BYTES}); uncut {sum(len(p.kept) for p in uncut)} results, "
          f"{uncut_size} compressed; assemble {assembled - start:.1f} s, "
          f"render {rendered - assembled:.1f} s")


if __name__ == "__main__":
    main()
