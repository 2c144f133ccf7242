"""Benchmark: compare 10,000 desired resources with a snapshot of the same size.

Generates a repository of Deployments, Services, ConfigMaps and Secrets and a `kubectl get -o
yaml`-style List with server fields, defaults and bookkeeping annotations, plants drift in 1% of
the objects, then times loading, reading the snapshot, and the comparison. Prints seconds per
stage and the peak resident memory of the process.

    python benchmarks/drift_bench.py [--resources 10000]
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from checker.drift.applied import field_set
from checker.drift.compare import DriftOptions, compare
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource
from checker.load import load_paths
from checker.model import SourceLocation


def desired_and_live(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One desired object and its live counterpart (with server fields and defaults)."""
    ns, name, kind = f"team-{i % 50}", f"app-{i}", ("Deployment", "Service", "ConfigMap",
                                                    "Secret")[i % 4]
    meta = {"name": name, "namespace": ns, "labels": {"app": name}}
    server = {"uid": f"uid-{i}", "resourceVersion": str(i), "creationTimestamp":
              "2026-01-01T00:00:00Z", "managedFields": [{"manager": "kustomize-controller"}],
              "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}
    if kind == "Deployment":
        spec = {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": "app", "image": f"registry.example/app:{i % 7}",
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "resources": {"limits": {"cpu": 1, "memory": "256Mi"},
                              "requests": {"cpu": "100m"}}}]}}}
        desired = {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
        live = json.loads(json.dumps(desired))
        pod = live["spec"]["template"]["spec"]
        pod.update({"dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                    "schedulerName": "default-scheduler", "securityContext": {},
                    "terminationGracePeriodSeconds": 30})
        c = pod["containers"][0]
        c.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePolicy": "File",
                  "terminationMessagePath": "/dev/termination-log"})
        c["ports"][0]["protocol"] = "TCP"
        c["env"].reverse()
        c["resources"]["limits"]["cpu"] = "1000m"
        live["spec"].update({"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                             "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                                 "maxSurge": "25%", "maxUnavailable": "25%"}}})
        live["status"] = {"replicas": 2, "readyReplicas": 2}
        if i % 100 == 0:
            c["image"] = "registry.example/app:hotfix"
    elif kind == "Service":
        desired = {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {
            "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
        live = json.loads(json.dumps(desired))
        live["spec"].update({"type": "ClusterIP", "sessionAffinity": "None",
                             "clusterIP": f"10.0.{i // 250}.{i % 250}"})
        live["spec"]["ports"][0]["protocol"] = "TCP"
    elif kind == "ConfigMap":
        desired = {"apiVersion": "v1", "kind": kind, "metadata": meta,
                   "data": {"k": f"v{i}", "mode": "on"}}
        live = json.loads(json.dumps(desired))
    else:
        desired = {"apiVersion": "v1", "kind": kind, "metadata": meta,
                   "stringData": {"password": f"pw-{i}"}}
        live = {"apiVersion": "v1", "kind": kind, "metadata": dict(meta), "type": "Opaque",
                "data": {"password": base64.b64encode(f"pw-{i}".encode()).decode()}}
    # what Flux's server-side apply records: the applied field set of kustomize-controller
    # (value-free), so the "applied but no longer in Git" check runs on every object
    server["managedFields"] = [
        {"manager": "kustomize-controller", "operation": "Apply", "apiVersion":
         desired["apiVersion"], "fieldsType": "FieldsV1", "time": "2026-01-01T00:00:00Z",
         "fieldsV1": field_set(desired)},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}}]
    live["metadata"] = {**live["metadata"], **server}
    return desired, live


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    args = parser.parse_args()
    hasher = SecretHasher(b"bench")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = root / "repo"
        repo.mkdir()
        live_items = []
        per_file = 100
        for start in range(0, args.resources, per_file):
            docs = []
            for i in range(start, min(start + per_file, args.resources)):
                desired, live = desired_and_live(i)
                docs.append(json.dumps(desired))
                live_items.append(live)
            # each document as a flow mapping; the leading "---" keeps it YAML (a file that
            # starts with "{" is read as one JSON document)
            (repo / f"part-{start // per_file:04d}.yaml").write_text(
                "---\n" + "\n---\n".join(docs))
        snapshot_file = root / "live.json"
        snapshot_file.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                             "items": live_items}))
        t0 = time.perf_counter()
        loaded = load_paths([repo], repo)
        t1 = time.perf_counter()
        snapshot = FileSource(snapshot_file, hasher).read()
        t2 = time.perf_counter()
        c2 = time.process_time()
        result = compare(loaded.resources, snapshot, hasher,
                         DriftOptions(entry=SourceLocation("repo")))
        t3 = time.perf_counter()
        c3 = time.process_time()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"resources: {len(loaded.resources)}  drift findings: {len(result.findings)}  "
          f"in sync: {result.in_sync}/{result.managed}")
    print(f"load desired state: {t1 - t0:.2f} s")
    print(f"read snapshot:      {t2 - t1:.2f} s")
    # wall time includes waiting for a core on a shared machine; CPU time is this process's
    print(f"compare:            {t3 - t2:.2f} s  (CPU {c3 - c2:.2f} s)")
    print(f"peak memory (RSS):  {peak_mib:.0f} MiB")
    drifted = len([i for i in range(0, args.resources, 100) if i % 4 == 0])
    if len(result.findings) != drifted:
        print(f"unexpected: {len(result.findings)} findings, planted {drifted}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
