#!/usr/bin/env python3
"""Regenerate docs/policies/ from policy-packs/*/pack.yaml.

Same as ``gitops-checker policies docs --out docs/policies``; pass ``--check`` to only verify
that the committed pages are up to date (what tests/policy/test_packs_catalog.py asserts).
"""

import sys
from pathlib import Path

from checker.cli.policies import policies

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    args = ["docs", "--out", str(root / "docs" / "policies"), *sys.argv[1:]]
    policies.main(args=args, prog_name="gitops-checker policies")
