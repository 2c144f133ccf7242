"""Follow Flux ``Kustomization`` objects to the folders they sync, and apply what Flux applies.

A cluster's entry point is often a folder such as ``clusters/production`` that holds only Flux
``kustomize.toolkit.fluxcd.io`` Kustomizations; the workloads live where their ``spec.path``
points (relative to the repository root, which is the root of the GitRepository source). This
module finds those objects (recursively: a synced folder may hold further Kustomizations), and
applies ``spec.targetNamespace`` and ``spec.postBuild.substitute`` to the objects loaded from
the synced folder, the way kustomize-controller does after its build.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from checker.load.objects import (
    RULE_MISSING_PATH,
    YAML_SUFFIXES,
    input_finding,
    read_documents,
    relpath,
)
from checker.model import Finding, Resource, SourceLocation

FLUX_GROUP = "kustomize.toolkit.fluxcd.io"
SUBSTITUTE_OPT_OUT = "kustomize.toolkit.fluxcd.io/substitute"
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})
# ${var}, ${var:=default}, ${var:-default}; $${var} is an escaped literal.
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")

# Kinds that are never namespaced; targetNamespace leaves them alone.
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode",
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService",
    "PriorityClass", "RuntimeClass", "IngressClass", "VolumeAttachment",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "PodSecurityPolicy", "ClusterIssuer", "ConstraintTemplate",
})


@dataclass(frozen=True)
class FluxSync:
    """One Flux Kustomization: the folder it syncs and what Flux does to the objects."""

    path: Path
    name: str
    target_namespace: str = ""
    substitute: Mapping[str, str] = field(default_factory=dict, compare=False)
    location: SourceLocation = field(default_factory=lambda: SourceLocation(""))


def mapping_of(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def is_flux_kustomization(data: Any) -> bool:
    """A ``kustomize.toolkit.fluxcd.io`` Kustomization object."""
    return (isinstance(data, dict) and data.get("kind") == "Kustomization"
            and str(data.get("apiVersion", "")).startswith(FLUX_GROUP + "/"))


def _yaml_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        if path.suffix in YAML_SUFFIXES:
            yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if Path(name).suffix in YAML_SUFFIXES:
                yield Path(dirpath, name)


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def _sync_of(data: dict[str, Any], doc_location: SourceLocation,
             path_location: SourceLocation, root: Path) -> FluxSync | Finding:
    meta = mapping_of(data.get("metadata"))
    name = f"{meta.get('namespace') or 'flux-system'}/{meta.get('name') or '?'}"
    spec = mapping_of(data.get("spec"))
    raw = spec.get("path") or "./"
    if not isinstance(raw, str):
        return input_finding(RULE_MISSING_PATH, f"Flux Kustomization {name}: spec.path must be "
                             "a string", path_location.path, path_location.line)
    target = Path(os.path.normpath(root / (raw.strip().lstrip("/") or ".")))
    if not _inside(target, root):
        return input_finding(RULE_MISSING_PATH, f"Flux Kustomization {name}: spec.path {raw!r} "
                             "leaves the repository", path_location.path, path_location.line)
    if not target.exists():
        return input_finding(RULE_MISSING_PATH, f"Flux Kustomization {name}: spec.path {raw!r} "
                             "does not exist in the repository", path_location.path,
                             path_location.line)
    post = mapping_of(spec.get("postBuild"))
    subst = mapping_of(post.get("substitute"))
    tns = spec.get("targetNamespace")
    return FluxSync(
        path=target, name=name,
        target_namespace=tns if isinstance(tns, str) else "",
        substitute={str(k): "" if v is None else str(v) for k, v in sorted(subst.items())},
        location=doc_location,
    )


def follow(paths: Iterable[Path], root: Path) -> tuple[list[FluxSync], list[Finding]]:
    """Flux Kustomizations reachable from ``paths``, followed recursively.

    Returns the syncs whose folder is not already covered by a given path or an earlier sync
    (those would load the same files twice), and input findings for broken ``spec.path``s.
    Cycles (``flux-system`` syncing the cluster folder that declares it) end naturally.
    """
    covered: list[Path] = [p for p in paths if p.exists()]
    queue: list[Path] = list(covered)
    seen_files: set[Path] = set()
    syncs: list[FluxSync] = []
    findings: list[Finding] = []
    while queue:
        current = queue.pop(0)
        for file in _yaml_files(current):
            if file.resolve() in seen_files:
                continue
            seen_files.add(file.resolve())
            try:
                if FLUX_GROUP.encode() not in file.read_bytes():
                    continue  # cheap pre-check: most manifests are not Flux objects
            except OSError:
                continue  # the loader reports unreadable files
            rel = relpath(file, root)
            docs, _problems = read_documents(file, rel)  # the loader reports parse problems
            for doc in docs:
                if not is_flux_kustomization(doc.data):
                    continue
                found = _sync_of(doc.data, doc.location(rel),
                                 doc.location(rel, ("spec", "path")), root)
                if isinstance(found, Finding):
                    findings.append(found)
                    continue
                if any(_inside(found.path, c) for c in covered):
                    continue
                covered.append(found.path)
                syncs.append(found)
                queue.append(found.path)
    return syncs, findings


def _substitute_text(text: str, variables: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        escaped, name, op, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in variables and (variables[name] != "" or op != ":-"):
            return variables[name]
        if op is not None:
            return default or ""
        return match.group(0)  # unknown variable: left as written (substituteFrom not read)
    return _VAR.sub(one, text)


def _substitute(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if isinstance(value, str) and "${" in value:
        out = _substitute_text(value, variables)
        if _VAR.fullmatch(value) and out != value:
            # Flux substitutes in the YAML text, so "${replicas}" -> 3 becomes a number.
            try:
                parsed = yaml.safe_load(out)
            except yaml.YAMLError:
                return out
            if isinstance(parsed, (int, float, bool)):
                return parsed
        return out
    return value


def _opted_out(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return False
    for key in ("annotations", "labels"):
        values = meta.get(key)
        if isinstance(values, dict) and str(values.get(SUBSTITUTE_OPT_OUT, "")) == "disabled":
            return True
    return False


def apply(resources: Iterable[Resource], sync: FluxSync) -> list[Resource]:
    """The objects as Flux applies them: target namespace set, variables substituted."""
    out: list[Resource] = []
    for res in resources:
        body: dict[str, Any] = copy.deepcopy(dict(res.body))
        changed = False
        if sync.substitute and not _opted_out(body):
            new = _substitute(body, sync.substitute)
            if new != body:
                body, changed = new, True
        namespace = res.namespace
        if sync.target_namespace and res.kind not in CLUSTER_SCOPED:
            meta = body.setdefault("metadata", {})
            if isinstance(meta, dict) and meta.get("namespace") != sync.target_namespace:
                meta["namespace"] = sync.target_namespace
                namespace, changed = sync.target_namespace, True
        if not changed:
            out.append(res)
            continue
        meta = mapping_of(body.get("metadata"))
        name = str(meta.get("name") or res.name)
        out.append(replace(res, body=body, namespace=namespace, name=name))
    return out
