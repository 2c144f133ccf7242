"""Benchmark: a fleet scanned in shards and merged, against one unsharded scan.

Usage: python benchmarks/fleet_bench.py [--clusters 8] [--resources 8000] [--shards 4]
       [--render-only] [--keep DIR]

Generates a repository of CLUSTERS clusters, each with its own folder of RESOURCES/CLUSTERS
objects (scan_bench's generator, the default packs), scans it once unsharded and once per shard
(``--shard I/N``, one after the other in this process), merges the shards' JSON reports, and
prints CPU seconds per step and whether every format of the merge equals the unsharded run.
``--render-only`` times only each renderer on the unsharded report (it runs on builds without
sharding too: ``PYTHONPATH=OLD python benchmarks/fleet_bench.py --render-only`` for an A/B of
the renderers). Not a test: machines are shared and noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_bench import cpu_seconds, generate

from checker import pipeline
from checker.options import ScanOptions
from checker.report import RENDERERS


def write_fleet(root: Path, clusters: int, resources: int) -> list[str]:
    """CLUSTERS folders of objects and a config naming one cluster per folder."""
    names = [f"cluster-{n:03d}" for n in range(clusters)]
    for name in names:
        generate(root / "clusters" / name, max(resources // clusters, 21), 20)
    config = {"version": 1, "clusters": [{"name": n, "paths": [f"clusters/{n}"]}
                                         for n in names]}
    (root / ".gitops-checker.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return names


def timed(label: str, func, *args, **kwargs):  # type: ignore[no-untyped-def]
    """``func(*args)``, printing its wall and CPU seconds under ``label``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = func(*args, **kwargs)
    print(f"{label:<34} wall {time.perf_counter() - wall:7.2f} s   "
          f"cpu {cpu_seconds() - cpu:7.2f} s", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--resources", type=int, default=8000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        write_fleet(root, args.clusters, args.resources)
        options = ScanOptions(paths=(root,), root=root, today=dt.date(2026, 12, 1))
        whole = timed("unsharded scan", pipeline.scan, options)
        print(f"findings {len(whole.findings)}, clusters {len(whole.clusters)}")
        rendered = {}
        for name, render in RENDERERS.items():
            rendered[name] = timed(f"render {name}", render, whole)
        print(f"json report {len(rendered['json']) / 2**20:.1f} MiB")
        if args.render_only:
            return 0
        from checker import fleet
        from checker.report import json_format

        texts = []
        for i in range(1, args.shards + 1):
            part = timed(f"shard {i}/{args.shards} scan", pipeline.scan,
                         replace(options, shard=(i, args.shards)))
            texts.append(timed(f"shard {i}/{args.shards} render json", json_format.render,
                               part))
        loaded = [timed(f"shard {i} load (schema checked)", json_format.load, text)
                  for i, text in enumerate(texts, start=1)]
        merged = timed("merge", fleet.merge, [(f"shard-{i}", r) for i, r in
                                             enumerate(loaded, start=1)])
        same = {name: render(merged) == rendered[name] for name, render in RENDERERS.items()}
        print("merged == unsharded:", ", ".join(f"{k} {v}" for k, v in same.items()))
        return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
