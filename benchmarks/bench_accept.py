"""Benchmark: applying risk acceptances, and following Flux Kustomizations.

Usage: python benchmarks/bench_accept.py [FINDINGS] [ACCEPTANCES]

Builds FINDINGS synthetic policy findings over as many resources in 2 clusters and
ACCEPTANCES file acceptances (a tenth of them matching), times ``accept.apply``; then writes a
repository of 2,000 manifests with 50 Flux Kustomizations and times ``flux.follow``.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from checker.accept import Acceptance, Selector, apply
from checker.load.flux import follow
from checker.load.objects import make_resource
from checker.model import Finding, Resource, Severity, SourceLocation


def synthetic(n_findings: int, n_acceptances: int) -> tuple[list[Finding], list[Resource],
                                                             list[Acceptance]]:
    resources, findings = [], []
    for i in range(n_findings):
        cluster = "prod" if i % 2 else "staging"
        body = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"app-{i}", "namespace": f"team-{i % 40}"}}
        r = make_resource(body, SourceLocation(f"apps/{i}.yaml", 1), {})
        r = Resource(**{**r.__dict__, "cluster": cluster})
        resources.append(r)
        findings.append(Finding(rule_id=f"policy-{i % 12}", category="policy",
                                severity=Severity.ERROR, message="m", location=r.location,
                                resource=r.display, cluster=cluster,
                                details={"constraint": f"K{i % 12}/policy-{i % 12}"},
                                ref=r.ref))
    acceptances = [Acceptance(
        id=f"RA-{j}", policy=f"policy-{j % 12}",
        selectors=(Selector(cluster="*", namespace=f"team-{j % 40}",
                            name=f"app-{j * 10}" if j % 10 else "app-*"),),
        justification="j", owner="o", expires=dt.date(2030, 1, 1),
        location=SourceLocation("acc.yaml", j + 1)) for j in range(n_acceptances)]
    return findings, resources, acceptances


def main() -> None:
    n_findings = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    n_acceptances = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    findings, resources, acceptances = synthetic(n_findings, n_acceptances)
    start = time.process_time()
    out = apply(findings, resources, acceptances, dt.date(2026, 11, 27))
    took = time.process_time() - start
    accepted = sum(1 for f in out.findings if f.suppression is not None)
    print(f"accept.apply: {n_findings} findings x {n_acceptances} acceptances: {took:.2f} s CPU "
          f"({accepted} accepted, {len(out.problems)} acceptance findings)")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(2_000):
            folder = root / "apps" / f"app-{i % 50}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"m{i}.yaml").write_text(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: v\n")
        (root / "clusters" / "prod").mkdir(parents=True)
        for i in range(50):
            (root / "clusters" / "prod" / f"ks{i}.yaml").write_text(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
                f"metadata:\n  name: app-{i}\n  namespace: flux-system\n"
                f"spec:\n  path: ./apps/app-{i}\n")
        start = time.process_time()
        syncs, _ = follow([root / "clusters" / "prod"], root)
        took = time.process_time() - start
        print(f"flux.follow: 50 Kustomizations -> {len(syncs)} folders, 2,000 manifests: "
              f"{took:.2f} s CPU")


if __name__ == "__main__":
    main()
