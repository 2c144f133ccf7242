"""Benchmark: the delta of a pull request that changes one file of scan_bench's repository.

Usage: python benchmarks/delta_bench.py --repo DIR [--resources 10000] [--files 500]
       [--mode full|delta] [--cache-dir DIR]

The first call with a new ``--repo`` generates scan_bench's repository there (every shipped
policy on) as a git repository with two commits: the base, and a pull request that changes one
file (one Deployment there becomes privileged, one gets fixed). Each call then runs, in this
process, what the CLI runs and writes the four reports (SARIF, JUnit, Markdown, JSON):

- ``--mode full``: one full scan of the head (no base): the figure the delta is held to;
- ``--mode delta``: ``scan --base HEAD~1``: the base evaluated from git objects and the head,
  classified; with ``--cache-dir`` the base's results are reused by content digest when the
  folder has them (warm), else stored (cold).

It prints the wall and CPU seconds, the delta's counts and whether the cache was hit. Time
whole processes with an A/B timer (full against delta) for the ratio. Not a test: machines are
shared and noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan_bench

from checker import basecache, pipeline
from checker.cli.common import write_outputs
from checker.pipeline import ScanOptions
from checker.policy.packs import load_catalog

CHANGED = "apps/app-0007.yaml"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env=env).stdout.strip()


def prepare(repo: Path, resources: int, files: int) -> None:
    """The base commit (scan_bench's repository) and the pull request changing one file."""
    if (repo / ".git").is_dir():
        return
    repo.mkdir(parents=True, exist_ok=True)
    scan_bench.generate(repo, resources, files)
    scan_bench.write_config(repo, load_catalog(), default_only=False)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    path = repo / CHANGED
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    pods = [d for d in docs if d.get("kind") in ("Deployment", "StatefulSet", "CronJob", "Pod")]

    def container(d: dict[str, Any]) -> dict[str, Any]:
        spec = d["spec"]
        spec = spec.get("jobTemplate", {}).get("spec", spec)
        c: dict[str, Any] = spec.get("template", {"spec": spec})["spec"]["containers"][0]
        return c

    clean = [d for d in pods if not container(d)["securityContext"]["privileged"]]
    privileged = [d for d in pods if container(d)["securityContext"]["privileged"]]
    container(clean[0])["securityContext"]["privileged"] = True  # a new finding
    if privileged:  # and a fixed one
        container(privileged[0])["securityContext"]["privileged"] = False
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    git(repo, "commit", "-q", "-am", "pull request: change one file")


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    """Prepare the repository if needed, run the mode, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--mode", choices=("full", "delta"), default="delta")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    repo = args.repo.resolve()
    prepare(repo, args.resources, args.files)
    if args.prepare_only:
        return 0
    options = ScanOptions(paths=(repo,), root=repo, fail_on=None,
                          base="HEAD~1" if args.mode == "delta" else "",
                          cache_dir=args.cache_dir if args.mode == "delta" else None)
    cached = bool(args.cache_dir and list(args.cache_dir.glob("base-*.json")))
    t0, c0 = time.perf_counter(), cpu_seconds()
    report = pipeline.scan(options)
    t1 = time.perf_counter()
    out = repo.parent / f"{repo.name}-reports-{args.mode}"
    files: dict[str, Path | None] = {fmt: out / f"report.{fmt}"
                                     for fmt in ("sarif", "junit", "markdown", "json")}
    with contextlib.redirect_stdout(io.StringIO()):
        write_outputs(report, "markdown", files)
    t2, c2 = time.perf_counter(), cpu_seconds()
    print(f"mode:              {args.mode}" + (
        f" (cache {'warm' if cached else 'cold'})" if args.cache_dir else ""))
    print(f"resources:         {report.resources_checked}")
    print(f"findings:          {len(report.findings)}")
    if report.base:
        print(f"delta:             {len(report.new)} new, {len(report.unchanged)} unchanged, "
              f"{len(report.fixed)} fixed against {report.base[:12]}")
    print(f"scan:              {t1 - t0:.2f} s; reports {t2 - t1:.2f} s; "
          f"total {t2 - t0:.2f} s (CPU {c2 - c0:.2f} s)")
    print(f"build digest:      {basecache.build_digest()[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
