"""The image inventory: every image per cluster and environment, what runs live, and flags.

``collect`` turns loaded resources into ``ImageUse`` records; ``analyse`` compares them
(mutable tags, pinning, registry allowlist, versions across environments and against the
registry's tags) and returns an ``Inventory`` that renderers only read. Findings for SARIF and
JUnit are derived from the same flags by ``findings``.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from checker import securitytower
from checker.load.objects import is_k8s_object, read_documents, relpath, resources_from_document
from checker.model import FieldPath, Finding, ObjectRef, Resource, Severity, SourceLocation
from checker.overview.extract import CONTAINER_LISTS, declared_images, pod_spec_path
from checker.overview.reference import ImageRef, is_older, parse_image, tag_version

RULE_MUTABLE = "image.mutable-tag"
RULE_NOT_PINNED = "image.not-pinned"
RULE_DISALLOWED = "image.disallowed-registry"
RULE_OUTDATED = "image.outdated"
RULE_BEHIND = "image.behind"
RULE_INVALID = "image.invalid-reference"
CATEGORY = "inventory"

FLAG_RULES = {
    "mutable-tag": RULE_MUTABLE,
    "not-pinned": RULE_NOT_PINNED,
    "disallowed-registry": RULE_DISALLOWED,
    "outdated": RULE_OUTDATED,
    "behind": RULE_BEHIND,
    "invalid-reference": RULE_INVALID,
}
SEVERITY = {
    RULE_MUTABLE: Severity.WARNING,
    RULE_NOT_PINNED: Severity.NOTE,
    RULE_DISALLOWED: Severity.ERROR,
    RULE_OUTDATED: Severity.WARNING,
    RULE_BEHIND: Severity.WARNING,
    RULE_INVALID: Severity.ERROR,
}


@dataclass(frozen=True)
class LiveImage:
    """What the snapshot says runs for a declared container.

    ``status``: ``same`` (live spec declares the same reference), ``different``, ``missing``
    (object or container not in the snapshot). ``image_ids`` are the resolved digests that
    running pods report in ``status.containerStatuses[].imageID``.
    """

    status: str
    image: str = ""
    image_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageUse:
    """One ``image:`` field of one object in one cluster, with the analysis results."""

    image: ImageRef
    cluster: str
    environment: str
    kind: str
    namespace: str
    name: str
    container: str
    container_type: str
    location: SourceLocation
    field_path: FieldPath
    live: LiveImage | None = None
    flags: tuple[str, ...] = ()
    newest_seen: str = ""
    newest_in_registry: str = ""
    newest_in_environment: str = ""
    ahead_environments: tuple[str, ...] = ()
    ref: ObjectRef | None = None  # the object that names the image, in its cluster

    @property
    def resource(self) -> str:
        """``Kind namespace/name``."""
        return (f"{self.kind} {self.namespace}/{self.name}" if self.namespace
                else f"{self.kind} {self.name}")

    def sort_key(self) -> tuple[Any, ...]:
        """Deterministic order: cluster, image, place of declaration."""
        return (self.cluster, self.image.name, self.image.version, self.location.path,
                self.location.line, self.container)


@dataclass(frozen=True)
class VersionRow:
    """One image across environments: the versions each runs and which ones are behind."""

    image: str
    versions: Mapping[str, tuple[str, ...]]
    newest: str
    behind: tuple[str, ...]


@dataclass(frozen=True)
class Inventory:
    """Everything the image renderers need; they only read it."""

    uses: tuple[ImageUse, ...]
    clusters: tuple[str, ...]
    environments: tuple[str, ...]
    matrix: tuple[VersionRow, ...]
    allowed_registries: tuple[str, ...] = ()
    registry_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    input_findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = ()
    snapshot: bool = False

    def counts(self) -> dict[str, int]:
        """How many uses carry each flag (every flag present), and totals."""
        out = {flag: 0 for flag in FLAG_RULES}
        for use in self.uses:
            for flag in use.flags:
                out[flag] += 1
        out["images"] = len({u.image.canonical for u in self.uses})
        out["uses"] = len(self.uses)
        return dict(sorted(out.items()))


# --- collection -----------------------------------------------------------------------------

def collect(resources: Iterable[Resource], cluster: str, environment: str) -> list[ImageUse]:
    """One ImageUse per ``image:`` field of the resources."""
    out: list[ImageUse] = []
    for res in resources:
        for declared in declared_images(res):
            out.append(ImageUse(
                image=parse_image(declared.image), cluster=cluster, environment=environment,
                kind=res.kind, namespace=res.namespace, name=res.name,
                container=declared.container, container_type=declared.container_type,
                location=res.locate(declared.field_path), field_path=declared.field_path,
                ref=res.ref.in_cluster(cluster),
            ))
    return out


def read_snapshot(file: Path, root: Path) -> tuple[list[Resource], list[Finding]]:
    """Live objects from a multi-document YAML or ``kind: List`` file (``kubectl get -o yaml``)."""
    rel = relpath(file, root) if file.is_absolute() or file.exists() else file.as_posix()
    docs, findings = read_documents(file, rel, root)
    resources: list[Resource] = []
    for doc in docs:
        if is_k8s_object(doc.data):
            resources.extend(resources_from_document(doc, rel))
    return resources, findings


def _owners(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    refs = (body.get("metadata") or {}).get("ownerReferences") or []
    return [(str(r.get("kind", "")), str(r.get("name", ""))) for r in refs
            if isinstance(r, Mapping)]


class LiveIndex:
    """Snapshot objects by kind/namespace/name, and the pods each workload owns."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.by_key: dict[tuple[str, str, str], Resource] = {}
        self.by_name: dict[tuple[str, str], list[Resource]] = defaultdict(list)
        self.pods: dict[str, list[Resource]] = defaultdict(list)
        for res in resources:
            self.by_key[(res.kind, res.namespace, res.name)] = res
            self.by_name[(res.kind, res.name)].append(res)
        for (kind, namespace, _), res in sorted(self.by_key.items()):
            if kind == "Pod":
                self.pods[namespace].append(res)

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        """The live object; a manifest without namespace matches a unique live object."""
        if namespace:
            return self.by_key.get((kind, namespace, name))
        found = self.by_name.get((kind, name), [])
        return found[0] if len(found) == 1 else None

    def pods_of(self, workload: Resource) -> list[Resource]:
        """Pods whose owner chain (via ReplicaSets and Jobs in the snapshot) ends at workload."""
        return [pod for pod in self.pods.get(workload.namespace, [])
                if self._owned_by(pod, workload, depth=0)]

    def _owned_by(self, res: Resource, workload: Resource, depth: int) -> bool:
        if depth > 3:
            return False
        for kind, name in _owners(res.body):
            if kind == workload.kind and name == workload.name:
                return True
            parent = self.by_key.get((kind, res.namespace, name))
            if parent is not None and self._owned_by(parent, workload, depth + 1):
                return True
        return False


_STATUS_LIST = {"container": "containerStatuses", "initContainer": "initContainerStatuses",
                "ephemeralContainer": "ephemeralContainerStatuses"}


def live_image(use: ImageUse, index: LiveIndex) -> LiveImage:
    """Compare one declared container with the snapshot."""
    live = index.find(use.kind, use.namespace, use.name)
    if live is None:
        return LiveImage("missing")
    image = ""
    spec_path = pod_spec_path(live)
    if spec_path is not None and use.container:
        spec: Any = live.body
        for key in spec_path:
            spec = spec.get(key) if isinstance(spec, Mapping) else None
        field_name = dict((t, f) for f, t in CONTAINER_LISTS).get(use.container_type, "")
        items = spec.get(field_name) if isinstance(spec, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and item.get("name") == use.container:
                image = str(item.get("image", ""))
    else:
        value: Any = live.body
        for key in use.field_path:
            if isinstance(value, Mapping) and isinstance(key, str):
                value = value.get(key)
            elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                value = value[key]
            else:
                value = None
        image = value if isinstance(value, str) else ""
    pods = [live] if live.kind == "Pod" else index.pods_of(live)
    ids: set[str] = set()
    status_list = _STATUS_LIST.get(use.container_type, "containerStatuses")
    for pod in pods:
        for status in (pod.body.get("status") or {}).get(status_list) or []:
            if isinstance(status, Mapping) and status.get("name") == use.container:
                image_id = str(status.get("imageID", ""))
                ids.add(image_id.rsplit("@", 1)[-1] if "@" in image_id else image_id)
    ids.discard("")
    if not image:
        return LiveImage("missing", image_ids=tuple(sorted(ids)))
    declared = use.image.canonical if not use.image.error else use.image.raw
    running = parse_image(image)
    same = (running.canonical if not running.error else running.raw) == declared
    if same and use.image.digest and ids and ids != {use.image.digest}:
        same = False
    return LiveImage("same" if same else "different", image, tuple(sorted(ids)))


# --- analysis -------------------------------------------------------------------------------

def registry_allowed(ref: ImageRef, allowlist: Sequence[str]) -> bool:
    """Whether ``registry/repository`` falls under an allowlist entry.

    An entry is a host (``ghcr.io``), a host and path prefix (``ghcr.io/acme``) or a glob
    (``*.example.com``, ``ghcr.io/acme-*``).
    """
    if not allowlist:
        return True
    for entry in allowlist:
        entry = entry.rstrip("/")
        host, _, prefix = entry.partition("/")
        if not fnmatch.fnmatchcase(ref.registry, host):
            continue
        if not prefix:
            return True
        if ref.repository == prefix or ref.repository.startswith(prefix + "/"):
            return True
        if fnmatch.fnmatchcase(ref.repository, prefix) or fnmatch.fnmatchcase(
                ref.repository, prefix + "/*"):
            return True
    return False


def _newest_of(tags: Iterable[str], like: str) -> str:
    ref = tag_version(like)
    best = ""
    for tag in sorted(tags):  # sorted: equal versions ("1.0+a", "1.0+b") resolve the same way
        version = tag_version(tag)
        if (ref is None or version is None or version.variant != ref.variant
                or (version.prerelease and not ref.prerelease)):
            continue
        if not best or is_older(best, tag):
            best = tag
    return best


def _matrix(uses: Sequence[ImageUse], environments: Sequence[str],
            promotion: Mapping[str, Sequence[str]] | None = None) -> list[VersionRow]:
    by_image: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for use in uses:
        if not use.image.error:
            by_image[use.image.name][use.environment].add(use.image.version or "latest")
    rows = []
    for image, per_env in sorted(by_image.items()):
        all_tags = sorted({t for tags in per_env.values() for t in tags})
        newest = ""
        for tag in all_tags:
            candidate = _newest_of(all_tags, tag)
            if candidate and (not newest or is_older(newest, candidate)):
                newest = candidate
        behind = tuple(env for env in environments if env in per_env and _behind_in_row(
            env, per_env, newest, promotion or {}))
        versions = {env: tuple(sorted(per_env[env])) for env in environments if env in per_env}
        rows.append(VersionRow(image, versions, newest, behind))
    return rows


def _behind_in_row(env: str, per_env: Mapping[str, set[str]], newest: str,
                   promotion: Mapping[str, Sequence[str]]) -> bool:
    """Whether ``env`` runs only versions older than the newest one it should have.

    With a promotion order (Security Tower ``previousStage``) that is the newest version of the
    stages before it; otherwise the newest version anywhere.
    """
    if env in promotion:
        before = sorted({t for e in promotion[env] for t in per_env.get(e, set())})
        newest = ""
        for tag in before:
            candidate = _newest_of(before, tag)
            if candidate and (not newest or is_older(newest, candidate)):
                newest = candidate
    return bool(newest) and all(is_older(t, newest) for t in per_env[env])


def analyse(uses: Sequence[ImageUse], *, environments: Sequence[str],
            clusters: Sequence[str], allowlist: Sequence[str] = (),
            registry_tags: Mapping[str, Sequence[str]] | None = None,
            input_findings: Sequence[Finding] = (), errors: Sequence[str] = (),
            snapshot: bool = False,
            promotion: Mapping[str, Sequence[str]] | None = None,
            namespace_allowlists: Mapping[tuple[str, str], tuple[Sequence[str], Sequence[str]]]
            | None = None) -> Inventory:
    """Flag every use and build the cross-environment version matrix.

    ``namespace_allowlists`` maps (cluster, namespace) to the trusted registries and images
    of a Security Tower image allowlist on that Namespace: an image there is allowed when the
    allowlist or ``allowlist`` lists it (without ``allowlist``, only the namespace's list).

    ``promotion`` maps an environment to the environments before it in the promotion order;
    such an environment is ``behind`` only stages before it, never those after it.
    """
    promotion = promotion or {}
    registry_tags = registry_tags or {}
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for use in uses:
        if use.image.tag and not use.image.error:
            seen[use.image.name][use.environment].add(use.image.tag)
    out = []
    for use in uses:
        ref = use.image
        flags: list[str] = []
        newest_seen = newest_registry = newest_env = ""
        ahead: list[str] = []
        if ref.error:
            flags.append("invalid-reference")
        else:
            if ref.mutable:
                flags.append("mutable-tag")
            if not ref.digest:
                flags.append("not-pinned")
            trusted = (namespace_allowlists or {}).get((use.cluster, use.namespace))
            if trusted is None:
                if not registry_allowed(ref, allowlist):
                    flags.append("disallowed-registry")
            elif not ((allowlist and registry_allowed(ref, allowlist))
                      or securitytower.image_trusted(ref.registry, ref.repository, *trusted)):
                flags.append("disallowed-registry")
        if ref.tag and not ref.error:
            envs = seen.get(ref.name, {})
            same_env = _newest_of(envs.get(use.environment, set()), ref.tag)
            for env, tags in sorted(envs.items()):
                candidate = _newest_of(tags, ref.tag)
                if use.environment in promotion and env not in promotion[use.environment]:
                    continue  # a later stage being newer is not this stage falling behind
                if env != use.environment and candidate and is_older(ref.tag, candidate):
                    ahead.append(env)
            everywhere = _newest_of({t for tags in envs.values() for t in tags}, ref.tag)
            newest_seen = everywhere if everywhere != ref.tag else ""
            if ref.name in registry_tags:
                candidate = _newest_of(registry_tags[ref.name], ref.tag)
                newest_registry = candidate if candidate and is_older(ref.tag, candidate) else ""
            newest_env = same_env if same_env and is_older(ref.tag, same_env) else ""
            if newest_env or newest_registry:
                flags.append("outdated")
            if ahead:
                flags.append("behind")
        out.append(replace(use, flags=tuple(flags), newest_seen=newest_seen,
                           newest_in_registry=newest_registry, newest_in_environment=newest_env,
                           ahead_environments=tuple(ahead)))
    order = {name: index for index, name in enumerate(clusters)}  # configured order
    out.sort(key=lambda u: (order.get(u.cluster, len(order)), *u.sort_key()))
    return Inventory(
        uses=tuple(out), clusters=tuple(clusters), environments=tuple(environments),
        matrix=tuple(_matrix(out, environments, promotion)),
        allowed_registries=tuple(allowlist),
        registry_tags={k: tuple(v) for k, v in sorted(registry_tags.items())},
        input_findings=tuple(input_findings), errors=tuple(errors), snapshot=snapshot,
    )


def _message(use: ImageUse, flag: str, allowlist: Sequence[str]) -> str:
    ref = use.image
    where = f" in {use.environment}" if use.environment else ""
    if flag == "mutable-tag":
        return (f"image {ref.raw} uses a mutable tag ({ref.tag or 'no tag, i.e. latest'}); "
                "what runs can change without a commit")
    if flag == "not-pinned":
        return f"image {ref.raw} is not pinned by digest"
    if flag == "disallowed-registry":
        if not allowlist:
            return (f"image {ref.raw} is not in the image allowlist of namespace "
                    f"{use.namespace} (securitytower.io/imageallowlist annotations)")
        return (f"image {ref.raw} comes from registry {ref.registry}, which is not in the "
                f"allowlist ({', '.join(allowlist)})")
    if flag == "outdated":
        reasons = []
        if use.newest_in_registry:
            reasons.append(f"the registry has {use.newest_in_registry}")
        if use.newest_in_environment:
            reasons.append(f"{use.newest_in_environment} is used elsewhere{where}")
        return f"image {ref.raw} is outdated: {'; '.join(reasons) or 'a newer version exists'}"
    if flag == "behind":
        return (f"image {ref.name}:{ref.tag}{where} is behind "
                f"{', '.join(use.ahead_environments)} (newest seen: {use.newest_seen})")
    return f"image reference {ref.raw!r} is invalid: {ref.error}"


def findings(inventory: Inventory,
             message: Callable[[ImageUse, str, Sequence[str]], str] = _message) -> list[Finding]:
    """One finding per flag of each use, located at the ``image:`` field."""
    out = list(inventory.input_findings)
    for use in inventory.uses:
        for flag in use.flags:
            rule = FLAG_RULES[flag]
            out.append(Finding(
                rule_id=rule, category=CATEGORY, severity=SEVERITY[rule],
                message=message(use, flag, inventory.allowed_registries),
                location=use.location, resource=use.resource, field_path=use.field_path,
                cluster=use.cluster, ref=use.ref,
            ))
    return sorted(out, key=Finding.sort_key)
