"""gatekeeper-library conformance: run every suite of a library checkout through ``verify``.

Usage: python benchmarks/library_conformance.py PATH [--json FILE]

PATH is a checkout of https://github.com/open-policy-agent/gatekeeper-library (its ``library``
folder is searched for ``suite.yaml`` files; nothing from it is copied anywhere). Counts are per
*case*: a test whose template or constraint does not load fails every one of its cases, where
``verify`` itself prints one failure for the test. Prints the library commit (when PATH is a git
work tree), one line per suite that does not fully pass, each failing case with the first line
of its reason, and the totals; exits 1 when a case fails. A dev-time measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checker.policy.suites import find_suites, run_suite


def cases_in(suite: Path) -> int:
    """Cases a suite defines, skipped ones included."""
    data = yaml.safe_load(suite.read_text(encoding="utf-8")) or {}
    return sum(len(t.get("cases") or []) for t in data.get("tests") or [])


def commit_of(path: Path) -> str:
    """The checkout's commit, or "unknown"."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def main() -> int:
    """Measure and print; 1 when a case fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    root = args.path / "library" if (args.path / "library").is_dir() else args.path
    suites = [s for s in find_suites([root]) if s.name == "suite.yaml"]
    total = passed = skipped = 0
    failing: list[dict[str, Any]] = []
    for suite in suites:
        result = run_suite(suite)
        cases = cases_in(suite)
        total += cases
        passed += result.passed
        skipped += result.skipped
        lost = cases - result.passed - result.skipped
        if lost:
            failing.append({"suite": str(suite.relative_to(args.path)), "failed": lost,
                            "reasons": [f.splitlines()[0][:200] for f in result.failures]})
    print(f"gatekeeper-library {commit_of(args.path)}")
    for item in failing:
        print(f"FAIL {item['suite']}: {item['failed']} case(s)")
        for reason in item["reasons"]:
            print(f"    {reason}")
    failed = total - passed - skipped
    print(f"{len(suites)} suites ({len(suites) - len(failing)} fully passing), {total} cases: "
          f"{passed} pass, {failed} fail, {skipped} skipped")
    if args.json:
        args.json.write_text(json.dumps({"commit": commit_of(args.path), "suites": len(suites),
                                         "cases": total, "passed": passed, "failed": failed,
                                         "skipped": skipped, "failing": failing}, indent=2)
                             + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
