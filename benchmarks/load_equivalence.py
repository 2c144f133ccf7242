"""Check that the loader of this tree reads manifests exactly like the loader of a git revision.

Usage: python benchmarks/load_equivalence.py [--baseline REV] PATH...

For every ``.yaml``/``.yml``/``.json`` file below each PATH it compares, between the
``checker`` package of REV (default HEAD, exported with ``git archive`` and run in a child
process) and the one imported here:

- ``parse_documents``: each document's data (types included: ``True`` is not ``1``), every
  field span, first and last line, or the problem message, line and column;
- ``load_paths(PATH, root=PATH)``: resources (key, location, body, every mark), input
  findings and the set of files read.

Prints the number of files, documents, resources and spans compared and every difference;
exits 1 if there is one. A tool for refactoring the loader, not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SUFFIXES = (".yaml", ".yml", ".json")


def snapshot(paths: list[Path]) -> dict[str, Any]:
    """Everything the loader of the imported ``checker`` package says about ``paths``."""
    from checker.load import load_paths
    from checker.load.yamlfile import Document, YamlProblem, decode, parse_documents

    files: dict[str, Any] = {}
    loads: dict[str, Any] = {}
    for root in paths:
        candidates = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        for file in candidates:
            try:
                text = decode(file.read_bytes())
            except YamlProblem as problem:
                files[str(file)] = ("decode", problem.message, problem.line, problem.column)
                continue
            out: list[Any] = []
            try:
                for item in parse_documents(text):
                    if isinstance(item, Document):
                        out.append(("doc", item.data, dict(item.spans), item.line, item.end_line))
                    else:
                        out.append(("problem", item.message, item.line, item.column))
            except Exception as err:
                out.append(("raised", type(err).__name__, str(err)))
            files[str(file)] = out
        base = root if root.is_dir() else root.parent
        try:
            result = load_paths([root], base)
        except Exception as err:
            loads[str(root)] = {"resources": ("raised", type(err).__name__, str(err)),
                                "findings": [], "files": []}
            continue
        loads[str(root)] = {
            "resources": [(r.key, r.location, r.body, {k: r.marks[k] for k in r.marks})
                          for r in result.resources],
            "findings": [(f.rule_id, f.severity, f.message, f.location) for f in result.findings],
            "files": sorted(result.files),
        }
    return {"files": files, "loads": loads}


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def baseline(rev: str, paths: list[Path]) -> dict[str, Any]:
    """Run :func:`snapshot` with the ``checker`` package of ``rev`` in a child process."""
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "checker"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = Path(tmp, "snapshot.pickle")
        env = {**os.environ, "PYTHONPATH": tmp}
        code = ("import pickle, sys; sys.path.insert(0, sys.argv[1]); "
                "import checker; assert checker.__file__.startswith(sys.argv[3]), checker; "
                "from load_equivalence import snapshot; from pathlib import Path; "
                "pickle.dump(snapshot([Path(p) for p in sys.argv[4:]]), open(sys.argv[2], 'wb'))")
        subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(out),
                        str(Path(tmp).resolve()), *map(str, paths)], check=True, env=env, cwd=tmp)
        with out.open("rb") as handle:
            data: dict[str, Any] = pickle.load(handle)
        return data


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two snapshots."""
    problems: list[str] = []
    if sorted(old["files"]) != sorted(new["files"]):
        problems.append("different file lists")
    for name in sorted(set(old["files"]) & set(new["files"])):
        if not same(old["files"][name], new["files"][name]):
            problems.append(f"{name}: parse_documents differs")
    for root in sorted(old["loads"]):
        a, b = old["loads"][root], new["loads"].get(root)
        if b is None:
            problems.append(f"{root}: not loaded")
            continue
        for part in ("resources", "findings", "files"):
            if not same(a[part], b[part]):
                problems.append(f"{root}: load_paths {part} differ")
    return problems


def main() -> int:
    """Compare and print the counts and differences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare against")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    paths = [p.resolve() for p in args.paths]
    old = baseline(args.baseline, paths)
    new = snapshot(paths)
    problems = compare(old, new)
    docs = [d for out in new["files"].values() if isinstance(out, list) for d in out]
    spans = sum(len(d[2]) for d in docs if d[0] == "doc")
    loaded = [r for v in new["loads"].values() if isinstance(v["resources"], list)
              for r in v["resources"]]
    resources, marks = len(loaded), sum(len(r[3]) for r in loaded)
    print(f"files {len(new['files'])}, documents {len(docs)}, spans {spans}, "
          f"resources {resources}, marks {marks}, "
          f"findings {sum(len(v['findings']) for v in new['loads'].values())}")
    for problem in problems:
        print("DIFFERENT:", problem)
    print("identical" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
