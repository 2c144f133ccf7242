"""Run the gatekeeper-library's CEL suites through `verify`'s code and print the figures.

Usage: python scripts/library_cel_suites.py LIBRARY_CHECKOUT

Every suite whose template has K8sNativeValidation code is run as `gitops-checker verify` runs
it (gator's default: the CEL code runs); the library is read where it is, nothing is copied
into this repository. Prints each suite's counts and the total, and exits 1 when a case fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

from checker.policy.suites import run_suite


def main() -> int:
    """Run the suites and print the figures."""
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    library = Path(sys.argv[1]) / "library"
    suites = sorted(t.parent / "suite.yaml" for t in library.glob("*/*/template.yaml")
                    if "K8sNativeValidation" in t.read_text(encoding="utf-8")
                    and (t.parent / "suite.yaml").is_file())
    passed = failed = 0
    for suite in suites:
        result = run_suite(suite)
        passed, failed = passed + result.passed, failed + result.failed
        print(f"{result.passed:4} passed {result.failed:3} failed  "
              f"{suite.parent.relative_to(library)}")
        for failure in result.failures:
            print(f"      FAIL {failure}")
    print(f"{len(suites)} CEL suites: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
