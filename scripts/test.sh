#!/usr/bin/env bash
# Install the project with its test tools into .venv, install the SARIF validator, and run
# lint, type check and tests. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test]'
if [ ! -x node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool ]; then
  npm install --no-save --no-audit --no-fund --silent @microsoft/sarif-multitool@5.7.0
fi
ruff check checker tests benchmarks
mypy
pytest "$@"
