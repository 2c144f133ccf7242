"""Benchmark: scan a generated repository with every shipped policy.

Usage: python benchmarks/scan_bench.py [--resources 10000] [--files 500] [--keep DIR] [--cel]
       [--admission]

Generates a repository of N resources (Deployments, StatefulSets, CronJobs, Pods, Services,
ConfigMaps, Namespaces) spread over files, then runs load and evaluation in this process with
every shipped policy - every built-in pack, and the policies that are off by default switched on
(``--default-only`` keeps them off) - and prints seconds per phase, resources per second and
peak memory (RSS). ``--cel`` adds three K8sNativeValidation (CEL-only) ConstraintTemplates with
their Constraints (as repository policies) and a ValidatingAdmissionPolicy with a binding and a
params ConfigMap (among the manifests), evaluated on Google's CEL runtime. ``--admission`` adds
four Gatekeeper mutators (Assign, AssignMetadata, ModifySet, AssignImage) and ExpansionTemplates
for Deployments, StatefulSets and CronJobs (through Jobs) into Pods, among the manifests.
Not a test: machines are shared and noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from checker import pipeline
from checker.cli.common import write_outputs
from checker.pipeline import ScanOptions
from checker.policy.evaluate import Evaluation, Evaluator
from checker.policy.packs import Catalog, load_catalog


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def every_policy(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Overrides that switch on the policies shipped off by default, with working parameters."""
    overrides: dict[str, dict[str, Any]] = {
        pid: {"enabled": True} for pid, pdef in catalog.policies.items() if not pdef.enabled}
    if "bp-allowed-registries" in overrides:
        overrides["bp-allowed-registries"]["parameters"] = {
            "registries": ["registry.example.com/"]}
    return overrides


def workload(kind: str, i: int, ns: str) -> dict[str, object]:
    """One pod-bearing object with a realistic container."""
    container: dict[str, object] = {
        "name": "app",
        "image": f"registry.example.com/team/app-{i % 50}:{'latest' if i % 7 == 0 else '1.2.3'}",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                      "limits": {"memory": "128Mi"}},
        "securityContext": {"privileged": i % 11 == 0, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False},
        "env": [{"name": f"VAR_{k}", "value": str(k)} for k in range(3)],
    }
    pod = {"containers": [container], "serviceAccountName": "app"}
    meta = {"name": f"{kind.lower()}-{i}", "namespace": ns, "labels": {"app": f"a{i}"}}
    template = {"metadata": {"labels": {"app": f"a{i}"}}, "spec": pod}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"a{i}"}},
                     "template": template}}


def generate(root: Path, count: int, files: int) -> None:
    """Write ``count`` objects into ``files`` multi-document files."""
    kinds = ["Deployment", "Service", "ConfigMap", "StatefulSet", "CronJob", "Pod", "Deployment"]
    docs: list[list[dict[str, object]]] = [[] for _ in range(files)]
    namespaces = [f"team-{n}" for n in range(20)]
    for ns in namespaces:
        docs[0].append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for i in range(count - len(namespaces)):
        ns = namespaces[i % len(namespaces)]
        kind = kinds[i % len(kinds)]
        if kind == "Service":
            obj: dict[str, object] = {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"svc-{i}", "namespace": ns},
                "spec": {"selector": {"app": f"a{i}"}, "ports": [{"port": 80}]}}
        elif kind == "ConfigMap":
            obj = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": f"cm-{i}", "namespace": ns},
                   "data": {"key": "value", "other": "x" * 40}}
        else:
            obj = workload(kind, i, ns)
        docs[i % files].append(obj)
    for n, batch in enumerate(docs):
        path = root / f"apps/app-{n:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(batch, sort_keys=False), encoding="utf-8")


class Phases:
    """Wall and CPU seconds spent in the wrapped pipeline functions."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func``, timed under ``name``."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), cpu_seconds()
            try:
                return func(*args, **kwargs)
            finally:
                self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t
                self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds() - c
        return timed


def _cel_template(kind: str, validations: list[dict[str, str]],
                  variables: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": kind.lower()},
            "spec": {"crd": {"spec": {"names": {"kind": kind}, "validation": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields":
                                    True}}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [{
                         "engine": "K8sNativeValidation",
                         "source": {"variables": variables or [],
                                    "validations": validations}}]}]}}


CONTAINERS = ("has(variables.anyObject.spec.template) ? "
              "variables.anyObject.spec.template.spec.containers : "
              "has(variables.anyObject.spec.containers) ? "
              "variables.anyObject.spec.containers : []")


def write_cel(root: Path) -> Path:
    """CEL templates + constraints in ``root/cel-policies``; a VAP among the manifests."""
    workloads = {"kinds": [{"apiGroups": ["", "apps"],
                            "kinds": ["Pod", "Deployment", "StatefulSet"]}]}
    objects: list[dict[str, Any]] = [
        _cel_template("CelPrivileged", [{
            "expression": "variables.containers.all(c, !has(c.securityContext) || "
                          "!has(c.securityContext.privileged) || !c.securityContext.privileged)",
            "messageExpression": "'privileged container in ' + object.metadata.name"}],
            [{"name": "containers", "expression": CONTAINERS}]),
        _cel_template("CelDisallowedTags", [{
            "expression": "variables.containers.all(c, !variables.params.tags.exists(t, "
                          "c.image.endsWith(':' + t)))",
            "message": "disallowed tag"}], [{"name": "containers", "expression": CONTAINERS}]),
        _cel_template("CelMemoryLimit", [{
            "expression": "variables.containers.all(c, has(c.resources.limits.memory) && "
                          "quantity(c.resources.limits.memory).compareTo("
                          "quantity(variables.params.max)) <= 0)",
            "message": "memory limit above the maximum"}],
            [{"name": "containers", "expression": CONTAINERS}]),
    ]
    for kind, params in (("CelPrivileged", {}), ("CelDisallowedTags", {"tags": ["latest"]}),
                         ("CelMemoryLimit", {"max": "1Gi"})):
        objects.append({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                        "metadata": {"name": kind.lower()},
                        "spec": {"match": workloads, "parameters": params}})
    folder = root / "cel-policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cel.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False),
                                     encoding="utf-8")
    vap = [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "bench-replicas"},
         "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                  "matchConstraints": {"resourceRules": [{
                      "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"],
                      "resources": ["deployments", "statefulsets"]}]},
                  "variables": [{"name": "max", "expression": "int(params.data.maxReplicas)"}],
                  "validations": [{"expression": "object.spec.replicas <= variables.max",
                                   "messageExpression": "'replicas above ' + "
                                                        "string(variables.max)"},
                                  {"expression": "object.spec.template.spec.containers.all(c, "
                                                 "c.image.startsWith('registry.example.com/'))",
                                   "message": "image from an unknown registry"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "bench-replicas"},
         "spec": {"policyName": "bench-replicas", "validationActions": ["Deny"],
                  "paramRef": {"name": "replica-limits", "namespace": "policy",
                               "parameterNotFoundAction": "Deny"}}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "replica-limits", "namespace": "policy"},
         "data": {"maxReplicas": "1"}},
    ]
    (root / "apps" / "vap.yaml").write_text(yaml.safe_dump_all(vap, sort_keys=False),
                                            encoding="utf-8")
    return folder


def write_admission(root: Path) -> None:
    """Mutators and ExpansionTemplates among the manifests (``apps/admission.yaml``)."""
    pods = [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}]

    def mutator(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "mutations.gatekeeper.sh/v1", "kind": kind,
                "metadata": {"name": name}, "spec": spec}

    def template(name: str, applies: list[dict[str, Any]], source: str,
                 generated: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "expansion.gatekeeper.sh/v1alpha1", "kind": "ExpansionTemplate",
                "metadata": {"name": name},
                "spec": {"applyTo": applies, "templateSource": source,
                         "generatedGVK": generated}}

    objects = [
        mutator("Assign", "run-as-non-root", {
            "applyTo": pods, "match": {"scope": "Namespaced"},
            "location": "spec.containers[name: *].securityContext.runAsNonRoot",
            "parameters": {"assign": {"value": True}}}),
        mutator("AssignMetadata", "owner", {
            "match": {"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]},
            "location": "metadata.labels.owner",
            "parameters": {"assign": {"fromMetadata": {"field": "namespace"}}}}),
        mutator("ModifySet", "no-debug", {
            "applyTo": pods, "location": "spec.containers[name: *].args",
            "parameters": {"operation": "prune", "values": {"fromList": ["--debug"]}}}),
        mutator("AssignImage", "mirror", {
            "applyTo": pods, "match": {"source": "Generated"},
            "location": "spec.containers[name: *].image",
            "parameters": {"assignDomain": "mirror.example.com"}}),
        template("workload-pods", [{"groups": ["apps"], "versions": ["v1"],
                                    "kinds": ["Deployment", "StatefulSet"]},
                                   {"groups": ["batch"], "versions": ["v1"], "kinds": ["Job"]}],
                 "spec.template", {"group": "", "version": "v1", "kind": "Pod"}),
        template("cronjob-jobs", [{"groups": ["batch"], "versions": ["v1"],
                                   "kinds": ["CronJob"]}],
                 "spec.jobTemplate", {"group": "batch", "version": "v1", "kind": "Job"}),
    ]
    (root / "apps" / "admission.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False),
                                                  encoding="utf-8")


def write_config(root: Path, catalog: Catalog, default_only: bool) -> None:
    """A .gitops-checker.yaml selecting every pack (and every policy unless default_only)."""
    config: dict[str, Any] = {"version": 1, "defaults": {"packs": sorted(catalog.packs)}}
    if not default_only:
        config["defaults"]["overrides"] = every_policy(catalog)
    (root / ".gitops-checker.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (default: one per CPU for large runs)")
    parser.add_argument("--no-batch", action="store_true",
                        help="evaluate each (constraint, object) pair on its own")
    parser.add_argument("--default-only", action="store_true",
                        help="leave the policies that are off by default off")
    parser.add_argument("--cel", action="store_true",
                        help="add CEL templates and a ValidatingAdmissionPolicy")
    parser.add_argument("--admission", action="store_true",
                        help="add Gatekeeper mutators and ExpansionTemplates")
    args = parser.parse_args()
    phases = Phases()
    run = Evaluator.run
    init = Evaluator.__init__
    # Benchmark-only instrumentation: time the stages of the real scan, and pass the options.
    pipeline.load_cluster = phases.wrap("load + parse", pipeline.load_cluster)  # type: ignore[assignment]
    Evaluator.run = phases.wrap(  # type: ignore[method-assign]
        "evaluate", functools.partial(_run, run, args.workers))
    Evaluator.__init__ = functools.partialmethod(  # type: ignore[method-assign]
        init, batch=not args.no_batch)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        generate(root, args.resources, args.files)
        catalog = load_catalog()
        write_config(root, catalog, args.default_only)
        policies = (write_cel(root),) if args.cel else ()
        if args.admission:
            write_admission(root)
            pipeline.admit.admit = phases.wrap(  # type: ignore[assignment]
                "admit (mutate, expand)", pipeline.admit.admit)
        if args.cel:
            pipeline_vap = pipeline.vap.evaluate
            pipeline.vap.evaluate = phases.wrap(  # type: ignore[assignment]
                "vap", pipeline_vap)
        t0, c0 = time.perf_counter(), cpu_seconds()
        report = pipeline.scan(ScanOptions(paths=(root / "apps",) if args.cel else (root,),
                                           root=root, fail_on=None, policies=policies))
        t1 = time.perf_counter()
        # what `gitops-checker scan --sarif F --junit F --markdown F --json F` writes
        out = Path(tmp) / "reports"  # outside the scanned tree, also with --keep
        files: dict[str, Path | None] = {fmt: out / f"report.{fmt}"
                                         for fmt in ("sarif", "junit", "markdown", "json")}
        with contextlib.redirect_stdout(io.StringIO()):
            write_outputs(report, "markdown", files)
        sizes = {fmt: path.stat().st_size for fmt, path in files.items() if path is not None}
        t2, c2 = time.perf_counter(), cpu_seconds()
    total = t2 - t0
    peak_mib = max(resource.getrusage(who).ru_maxrss
                   for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(f"resources:         {report.resources_checked}")
    print(f"policies:          {len(report.rules)} rules, {len(catalog.policies)} policies shipped "
          f"({'default set' if args.default_only else 'all on'}; packs: "
          f"{', '.join(sorted(catalog.packs))})")
    print(f"findings:          {len(report.findings)}")
    for name in phases.wall:
        print(f"{name + ':':19}{phases.wall[name]:.2f} s (CPU {phases.cpu[name]:.2f} s)")
    rest = (t1 - t0) - sum(phases.wall.values())
    print(f"{'rest of the scan:':19}{rest:.2f} s (config, policies, acceptances, sorting)")
    print(f"{'write reports:':19}{t2 - t1:.2f} s (SARIF, JUnit, Markdown, JSON: "
          f"{sum(sizes.values()) / 1e6:.1f} MB)")
    print(f"{'total:':19}{total:.2f} s (CPU {c2 - c0:.2f} s, all processes)")
    print(f"{'resources/second:':19}{report.resources_checked / total:,.0f}")
    print(f"{'peak memory (RSS):':19}{peak_mib:.0f} MiB (largest process)")
    return 0


def _run(run: Callable[..., Evaluation], workers: int | None, self: Evaluator,
         *args: Any, **kwargs: Any) -> Evaluation:
    kwargs.setdefault("workers", workers)
    return run(self, *args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
