"""The ``helm`` command Kustomize runs for ``helmCharts:``, backed by this package's Helm path.

Kustomize renders ``helmCharts:`` only with ``--enable-helm`` and a ``helm`` executable
(``--helm-command``). gitops-checker always gives it this shim (see
:func:`checker.load.kustomize.helm_flags`), so charts in kustomizations render through the same
Helm as everything else (the binary when it is on PATH, else the SDK) and Kustomize never pulls
a chart itself:

- ``helm version -c --short`` answers a Helm 3 version (Kustomize 5 refuses anything else;
  the shim speaks Helm 3's ``template`` command line), naming the engine behind it;
- ``helm template [NAME] CHART [--namespace NS] [-f/--values FILE]... [--include-crds]
  [--skip-tests] [--no-hooks] [--generate-name] [--kube-version V] [--api-versions V]``
  renders a chart folder through :func:`checker.load.helm.helm_render`;
- ``helm pull`` (a chart that is not vendored in the kustomization's ``chartHome``) fails with
  a message saying so: remote charts in ``helmCharts:`` are not fetched, and the Kustomize
  error names the kustomization.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

SHIM_VERSION = "v3.0.0+gitops-checker"
NOT_PULLED = ("gitops-checker does not pull charts for helmCharts: vendor the chart into the "
              "kustomization's chartHome (default charts/<name>)")


def _values(files: Sequence[str]) -> dict[str, object]:
    from checker.load.helm import merge_values

    merged: dict[str, object] = {}
    for name in files:
        data = yaml.safe_load(Path(name).read_text(encoding="utf-8"))
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ValueError(f"values file {Path(name).name} is not a mapping")
        merged = merge_values(merged, data)
    return merged


def template(args: Sequence[str]) -> int:
    """``helm template``: rendered objects on stdout, each after a ``# Source:`` line."""
    from checker.load.helm import HelmFailed, HelmUnavailable, helm_render

    positional: list[str] = []
    values: list[str] = []
    namespace = "default"
    crds, tests, hooks = False, True, True
    index = 0
    takes_value = {"--kube-version", "--api-versions", "-a", "--name-template", "--version",
                   "--repo"}
    while index < len(args):
        arg = args[index]
        if arg in ("--namespace", "-n"):
            namespace, index = args[index + 1], index + 2
        elif arg in ("-f", "--values"):
            values.append(args[index + 1])
            index += 2
        elif arg == "--include-crds":
            crds, index = True, index + 1
        elif arg == "--skip-tests":
            tests, index = False, index + 1
        elif arg == "--no-hooks":
            hooks, index = False, index + 1
        elif arg in takes_value:
            index += 2
        elif arg.startswith("-"):
            index += 1  # --generate-name and flags without a value
        else:
            positional.append(arg)
            index += 1
    if not positional:
        print("Error: helm template needs a chart", file=sys.stderr)
        return 1
    chart = Path(positional[-1])
    release = positional[0] if len(positional) > 1 else "release-name"
    if not chart.is_dir():
        print(f"Error: {NOT_PULLED}", file=sys.stderr)
        return 1
    try:
        _name, sources = helm_render(chart, release, namespace, _values(values), crds)
    except HelmUnavailable:
        print("Error: neither the helm binary nor the helm-python-sdk package is installed",
              file=sys.stderr)
        return 1
    except (HelmFailed, ValueError, OSError, yaml.YAMLError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    out: list[str] = []
    for source in sorted(sources):
        if source.endswith("NOTES.txt") or not sources[source].strip():
            continue
        for doc in yaml.safe_load_all(sources[source]):
            if not isinstance(doc, dict):
                continue
            hook = str(((doc.get("metadata") or {}).get("annotations") or {}).get(
                "helm.sh/hook", ""))
            if hook and (not hooks or (not tests and "test" in hook)):
                continue
            out.append(f"---\n# Source: {source}\n"
                       + yaml.safe_dump(doc, sort_keys=False))
    sys.stdout.write("".join(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the shim."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return 1
    if args[0] == "version":
        print(SHIM_VERSION)
        return 0
    if args[0] == "template":
        return template(args[1:])
    if args[0] == "pull":
        print(f"Error: {NOT_PULLED}", file=sys.stderr)
        return 1
    print(f"Error: helm {args[0]} is not supported by gitops-checker's helm shim",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
