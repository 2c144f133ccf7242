"""Benchmark: the 10,000-resource scan plus 100 HelmReleases over local charts and 50 overlays.

Usage: python benchmarks/helm_bench.py [--resources 10000] [--releases 100] [--overlays 50]
                                       [--charts 10] [--keep DIR] [--no-helm]
                                       [--build-workers 4]

Generates scan_bench's repository (N resources in plain files), then adds ``--charts`` chart
folders (copies of tests/fixtures/helm/web), ``--overlays`` Kustomize overlays, each patching
the values of one HelmRelease of a shared base, and plain HelmReleases up to ``--releases``,
and runs ``scan`` with every shipped policy in this process. Releases with the same chart,
values, name and namespace are rendered once. Prints seconds per phase (load; of it the
window of the Kustomize builds, its CPU including their processes; Helm; evaluate), how many
Helm renders and Kustomize builds ran, and the total.
``--no-helm`` generates only the 10,000 resources, for the A/B figure. Not a test: machines
are shared and noisy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan_bench

from checker import pipeline
from checker.load import helm, kustomize
from checker.load.objects import LoadResult
from checker.pipeline import ScanOptions
from checker.policy.evaluate import Evaluator
from checker.policy.packs import load_catalog

WEB = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "helm" / "web"
SOURCE = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
          "metadata": {"name": "flux-system", "namespace": "flux-system"},
          "spec": {"url": "https://git.example.com/fleet", "ref": {"branch": "main"}}}


def release(name: str, namespace: str, chart: int, values: dict[str, object]) -> dict[str, object]:
    """A HelmRelease of the repository's chart ``charts/web-<chart>``."""
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "10m",
                     "chart": {"spec": {"chart": f"./charts/web-{chart}",
                                        "sourceRef": {"kind": "GitRepository",
                                                      "name": "flux-system",
                                                      "namespace": "flux-system"}}},
                     "values": values}}


def generate_helm(root: Path, releases: int, overlays: int, charts: int) -> int:
    """Charts, overlays and releases; returns how many HelmReleases were written.

    Five bases hold one HelmRelease each; every overlay includes one base, sets its own
    namespace and patches the release's values (so each overlay is one more release). The
    rest of ``releases`` are plain HelmRelease files, some of them identical in chart and
    values.
    """
    for c in range(charts):
        shutil.copytree(WEB, root / "charts" / f"web-{c}")
    (root / "clusters").mkdir(parents=True, exist_ok=True)
    (root / "clusters" / "flux-system.yaml").write_text(yaml.safe_dump(SOURCE),
                                                         encoding="utf-8")
    bases = 5
    for b in range(bases):
        base = root / "apps" / "base" / f"svc-{b}"
        base.mkdir(parents=True)
        (base / "release.yaml").write_text(yaml.safe_dump(
            release(f"svc-{b}", "shop", b % charts, {"replicas": 1})), encoding="utf-8")
        (base / "kustomization.yaml").write_text(
            yaml.safe_dump({"resources": ["release.yaml"]}), encoding="utf-8")
    for o in range(overlays):
        folder = root / "apps" / "overlays" / f"env-{o:02d}"
        folder.mkdir(parents=True)
        patch = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                 "metadata": {"name": f"svc-{o % bases}", "namespace": "shop"},
                 "spec": {"values": {"replicas": 2 + o % 3,
                                     "securityContext": {"privileged": o % 5 == 0}}}}
        (folder / "values.yaml").write_text(yaml.safe_dump(patch), encoding="utf-8")
        (folder / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": [f"../../base/svc-{o % bases}"], "namespace": f"env-{o:02d}",
            "patches": [{"path": "values.yaml"}]}), encoding="utf-8")
    plain = max(releases - overlays, 0)
    docs = [release(f"team-{r}", f"team-{r % 20}", r % charts,
                    {"replicas": 1 + r % 2, "image": {"tag": f"1.{r % 2}"}})
            for r in range(plain)]
    if docs:
        (root / "apps" / "releases.yaml").write_text(yaml.safe_dump_all(docs),
                                                     encoding="utf-8")
    return overlays + plain


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--overlays", type=int, default=50)
    parser.add_argument("--charts", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--no-helm", action="store_true", help="only the plain resources")
    parser.add_argument("--build-workers", type=int, default=kustomize.BUILD_WORKERS,
                        help="Kustomize builds at once")
    args = parser.parse_args()
    kustomize.BUILD_WORKERS = args.build_workers
    phases = scan_bench.Phases()
    renders = [0]
    raw_render = helm._sdk_render if helm.engine() == "sdk" else helm._binary_render

    def counted(*a: object, **k: object) -> tuple[str, dict[str, str]]:
        renders[0] += 1
        return raw_render(*a, **k)  # type: ignore[arg-type]

    # Benchmark-only instrumentation: time the stages of the real scan.
    helm._sdk_render = helm._binary_render = counted  # type: ignore[assignment]
    pipeline.load_paths = phases.wrap("load files", pipeline.load_paths)  # type: ignore[assignment]
    helm.expand_releases = phases.wrap("helm releases", helm.expand_releases)  # type: ignore[assignment]
    pipeline.helm_load.expand_releases = helm.expand_releases  # type: ignore[attr-defined]
    raw_render_all = kustomize.render_all
    builds = [0]

    def timed_builds(dirs: Iterable[Path], *a: Any, **k: Any) -> Iterator[LoadResult]:
        # the whole window from the first build to the last result (the loader does nothing
        # else meanwhile): wall, and CPU of this process and the Kustomize processes
        folders = list(dirs)
        builds[0] += len(folders)
        return iter(phases.wrap("kustomize builds",
                                lambda: list(raw_render_all(folders, *a, **k)))())

    kustomize.render_all = timed_builds  # type: ignore[assignment]
    Evaluator.run = phases.wrap("evaluate", Evaluator.run)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        scan_bench.generate(root, args.resources, args.files)
        written = 0 if args.no_helm else generate_helm(root, args.releases, args.overlays,
                                                       args.charts)
        catalog = load_catalog()
        scan_bench.write_config(root, catalog, default_only=False)
        t0, c0 = time.perf_counter(), scan_bench.cpu_seconds()
        report = pipeline.scan(ScanOptions(paths=(root,), root=root, fail_on=None))
        t1, c1 = time.perf_counter(), scan_bench.cpu_seconds()
    helm_entries = [c for c in report.coverage if c.kind == "helm" and c.state == "rendered"]
    print(f"engine:            {helm.engine()}")
    print(f"resources:         {report.resources_checked}")
    print(f"helm releases:     {written} written, {len(helm_entries)} rendered entries, "
          f"{renders[0]} Helm renders (distinct chart, values, name, namespace)")
    print(f"kustomize folders: {builds[0]} built, {kustomize.BUILD_WORKERS} at a time")
    print(f"findings:          {len(report.findings)} "
          f"({sum(f.rule_id.startswith('input.') for f in report.findings)} input)")
    for name in phases.wall:
        print(f"{name + ':':19}{phases.wall[name]:.2f} s (CPU {phases.cpu[name]:.2f} s)")
    print(f"{'scan total:':19}{t1 - t0:.2f} s (CPU {c1 - c0:.2f} s, all processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
