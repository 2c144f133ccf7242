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
# Real OPA (Gatekeeper's engine) is the oracle of the differential tests. Its wheel declares
# Python >= 3.14 but runs on 3.11 (the wheel is py3-none), so it is installed on its own.
python -m pip install --quiet --ignore-requires-python opa-golib-python-bindings==0.4.4
# Real peers the tests start on loopback: Debian's OCI registry (images tests) and ssh-keygen
# (signed-commit audit tests), and Go (the Go-template oracle). Installed when missing and this user can install packages.
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v git >/dev/null 2>&1 || need+=(git)
# Go's own text/template is the oracle of the ApplicationSet Go-template tests
command -v go >/dev/null 2>&1 || compgen -G '/usr/lib/go-*/bin/go' >/dev/null || need+=(golang-go)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -x node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool ]; then
  npm install --no-save --no-audit --no-fund --silent @microsoft/sarif-multitool@5.7.0
fi
# A real helm binary for the binary engine's tests, kept off PATH (.tools/helm/helm).
bash scripts/install_helm.sh >/dev/null
ruff check checker tests benchmarks
mypy
# -m "" selects every test, the slow ones too (pyproject's addopts leave them out locally);
# a later -m in "$@" still wins.
pytest -m "" "$@"
