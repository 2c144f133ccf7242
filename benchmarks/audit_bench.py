"""Benchmark: the audit trail of a 2,000-commit repository holding 10,000 objects.

Generates the repository with ``git fast-import`` (deterministic: fixed authors, dates and
contents): the first commit adds FILES manifests of OBJECTS/FILES objects each (Deployments and
ConfigMaps), each later commit edits one to three of them (an image tag, a data value, a new
label); every 50th commit also breaks a file and the next one fixes it. Then runs
``python -m checker audit --format json`` on it as a child process and prints its wall seconds,
its peak resident memory (the kernel's accounting of the child) and the trail's summary.

    python benchmarks/audit_bench.py [--commits 2000] [--objects 10000] [--files 500]
                                     [--keep DIR]

``--keep DIR`` writes the repository to DIR and leaves it there (for an A/B run with
``farm-bench -- python -m checker audit --repo DIR ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z


def _object(file: int, index: int, version: int) -> str:
    name = f"app-{file}-{index}"
    if index % 2:
        return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
                f"  namespace: team-{file % 20}\ndata:\n  version: \"{version}\"\n"
                f"  mode: standard\n")
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
            f"  namespace: team-{file % 20}\n  labels: {{app: {name}, rev: \"{version % 3}\"}}\n"
            f"spec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n"
            f"  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n"
            f"      containers:\n        - name: app\n"
            f"          image: registry.example.com/{name}:1.{version}.0\n"
            f"          resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}\n")


def _file(file: int, per_file: int, version: int, edited: int) -> str:
    return "---\n".join(_object(file, i, version if i == edited else 0)
                        for i in range(per_file))


def fast_import_stream(commits: int, objects: int, files: int) -> str:
    """The ``git fast-import`` input of the whole history."""
    per_file = max(objects // files, 1)
    out = []
    versions = [0] * files
    for number in range(commits):
        who = f"Dev {number % 7}"
        when = EPOCH + number * 3600
        message = f"change {number}\n"
        out.append(f"commit refs/heads/main\nauthor {who} <dev{number % 7}@example.com> "
                   f"{when} +0000\ncommitter CI <ci@example.com> {when} +0000\n"
                   f"data {len(message.encode())}\n{message}")
        if number == 0:
            touched = list(range(files))
        else:
            touched = sorted({(number * 7 + k * 131) % files for k in range(1 + number % 3)})
        for file in touched:
            if number:
                versions[file] += 1
            text = _file(file, per_file, versions[file], versions[file] % per_file)
            if number % 50 == 25 and file == touched[0]:
                text += "broken: [\n"  # unreadable version; the next edit of it repairs it
            data = text.encode()
            out.append(f"M 100644 inline apps/f{file:04d}.yaml\ndata {len(data)}\n{text}\n")
        out.append("\n")
    return "".join(out)


def generate(repo: Path, commits: int, objects: int, files: int) -> None:
    """Create the repository at ``repo``."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], check=True, env=env,
                   input=fast_import_stream(commits, objects, files).encode())


def main() -> None:
    """Generate, audit, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.keep or Path(tmp) / "repo"
        start = time.perf_counter()
        generate(repo, args.commits, args.objects, args.files)
        print(f"generated {args.commits} commits, {args.objects} objects in {args.files} "
              f"files: {time.perf_counter() - start:.1f} s", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "checker", "audit", "--repo", str(repo),
                               "--format", "json"], capture_output=True, check=False)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode not in (0, 1):
            sys.exit(f"audit failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
        summary = json.loads(proc.stdout)["summary"]
        print(f"audit: {wall:.1f} s wall, peak RSS {peak:.0f} MiB (largest child), "
              f"summary {json.dumps(summary, sort_keys=True)}")


if __name__ == "__main__":
    main()
