"""Benchmark: load only (``checker.load.load_paths``), optionally against a git revision.

Usage: python benchmarks/load_bench.py [--resources 10000] [--files 500] [--repeat 5]
       [--baseline REV] [--path DIR]

Generates the repository of ``scan_bench.py`` (or loads ``--path``) and times ``load_paths``
``--repeat`` times in fresh processes, printing the minimum wall and CPU seconds. With
``--baseline`` the ``checker`` package of that revision (exported with ``git archive``) is
timed too, alternating runs so both see the same machine load. The time of one full
garbage collection right after loading is printed too: work left for the next phase.
Not a test: machines are shared and noisy; compare the minimums of one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import gc, sys, time
from pathlib import Path
import checker
assert checker.__file__.startswith(sys.argv[2]), checker.__file__
from checker.load import load_paths
root = Path(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
result = load_paths([root], root)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
collect = time.process_time()
gc.collect()
print(len(result.resources), len(result.findings), wall, cpu, time.process_time() - collect)
"""


def run_once(root: Path, package_dir: Path) -> tuple[int, float, float, float]:
    """Load ``root`` with the ``checker`` package found in ``package_dir``."""
    env = {**os.environ, "PYTHONPATH": str(package_dir)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(package_dir)],
                         check=True, capture_output=True, text=True, env=env,
                         cwd=package_dir).stdout.split()
    return int(out[0]), float(out[2]), float(out[3]), float(out[4])


def main() -> int:
    """Time the loads and print the minimums."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", help="git revision to time as well")
    parser.add_argument("--path", type=Path, help="load this folder instead of generating one")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        root = args.path.resolve() if args.path else Path(tmp, "repo")
        if not args.path:
            sys.path.insert(0, str(Path(__file__).parent))
            from scan_bench import generate

            generate(root, args.resources, args.files)
        trees = {"this tree": here}
        if args.baseline:
            base = Path(tmp, "baseline")
            base.mkdir()
            archive = subprocess.run(["git", "-C", str(here), "archive", args.baseline,
                                      "checker"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            trees = {f"baseline {args.baseline}": base, **trees}
        best: dict[str, tuple[int, float, float, float]] = {}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                now = run_once(root, tree)
                old = best.get(name, now)
                best[name] = (now[0], *(min(a, b) for a, b in zip(old[1:], now[1:], strict=True)))
    for name, (count, wall, cpu, collect) in best.items():
        print(f"{name:>24}: {count} resources, load {wall:.2f} s (CPU {cpu:.2f} s), "
              f"{count / wall:,.0f} resources/s; a full garbage collection after it "
              f"{collect:.2f} s")
    if len(best) == 2:
        (_, a), (_, b) = best.items()
        print(f"{'speed-up':>24}: wall {a[1] / b[1]:.2f}x, CPU {a[2] / b[2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
