"""Render Helm charts and Flux ``HelmRelease``s with the real Helm.

Helm is the ``helm`` binary when it is on PATH, otherwise the ``helm-python-sdk`` package
(Helm's Go SDK through ctypes, no binary). Nothing here contacts a cluster; remote charts are
fetched by :mod:`checker.load.helmfetch` (allowed hosts only, public addresses only, a cache).

Stable API (the Argo CD loader and Kustomize ``helmCharts:`` call it):

``render_chart(chart, root, release=..., namespace=..., layers=[...], declared=...)``
    Render a chart folder or ``.tgz`` with values given as :class:`ValuesLayer` s (lowest
    priority first, each with the location of its keys) and return a
    :class:`~checker.load.objects.LoadResult`: the objects, each pointing at its template file
    and, where the field's value came from a values layer, at the line that set it; a Helm
    error is an ``input.helm-error`` finding with Helm's message at the template line Helm names.
``values_layer(data, path_of)`` / ``file_layer(file, root)``
    Build a layer from a mapping and a field-path -> SourceLocation lookup, or from a values
    file in the repository.
``HelmSettings``
    ``allowed_hosts`` (from the trusted config) and ``cache_dir`` for remote charts.
``expand_releases(loaded, root, settings)``
    Render every Flux ``HelmRelease`` among ``loaded.resources`` into ``loaded`` (see
    docs/helm.md for the semantics followed and the location rule).

Everything that cannot be rendered is a ``not_checked`` ledger entry and finding, or an error
finding with Helm's message: never a silent pass.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.load import flux as flux_load
from checker.load import helmfetch, workspace
from checker.load.flux import CLUSTER_SCOPED, mapping_of
from checker.load.objects import (
    LoadResult,
    input_finding,
    is_k8s_object,
    make_resource,
    read_documents,
    relpath,
)
from checker.load.yamlfile import SAFE_LOADER, YamlProblem, parse_documents
from checker.model import Coverage, FieldPath, Resource, SourceLocation

RULE_HELM = "input.helm-error"
HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
CHART_FILE = "Chart.yaml"
TIMEOUT_SECONDS = 120
TEST_HOOKS = frozenset({"test", "test-success", "test-failure"})
DEFAULT_NAMESPACE = "default"
MAX_RELEASE_NAME = 53
_ORIGIN = "gitops-checker.io/helm-object"

LocateFn = Callable[[FieldPath], "SourceLocation | None"]


class HelmUnavailable(Exception):
    """Neither the ``helm`` binary nor the ``helm-python-sdk`` package is installed."""


class HelmFailed(Exception):
    """Helm refused to render; the message is Helm's."""


@dataclass(frozen=True)
class HelmSettings:
    """How remote charts may be fetched: hosts from the trusted config, and the cache folder."""

    allowed_hosts: tuple[str, ...] = ()
    cache_dir: Path | None = None


@dataclass(frozen=True)
class ValuesLayer:
    """One source of values: the data, where each of its fields is written, and a label."""

    data: Mapping[str, Any]
    locate: LocateFn = field(compare=False, default=lambda _path: None)
    label: str = ""


def values_layer(data: Mapping[str, Any], locate: LocateFn | None = None,
                 label: str = "") -> ValuesLayer:
    """A values layer from a mapping and a field-path lookup (``None``: no locations)."""
    return ValuesLayer(data, locate or (lambda _path: None), label)


def file_layer(file: Path, root: Path) -> ValuesLayer | str:
    """A values layer from a YAML values file; a problem is returned as a message."""
    rel = relpath(file, root)
    docs, problems = read_documents(file, rel)
    if problems:
        first = problems[0]
        return f"{first.location}: {first.message}"
    data = docs[0].data if docs else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return f"{rel}: values file is not a mapping"
    spans = docs[0].spans if docs else {}

    def locate(path: FieldPath) -> SourceLocation | None:
        span = spans.get(tuple(path))
        return SourceLocation(rel, span[0], span[1], span[2], span[3]) if span else None
    return ValuesLayer(data, locate, rel)


def merge_values(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Flux's merge of values: mappings merge recursively, anything else in ``top`` wins."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---- engines ---------------------------------------------------------------------------------


def engine() -> str:
    """``binary`` when ``helm`` is on PATH, else ``sdk`` when the package imports."""
    if shutil.which("helm"):
        return "binary"
    try:
        import helm_python  # noqa: F401
    except (ImportError, OSError):
        raise HelmUnavailable from None
    return "sdk"


def _sdk_render(chart: Path, release: str, namespace: str, values: Mapping[str, Any],
                crds: bool) -> tuple[str, dict[str, str]]:
    import helm_python
    try:
        # Loaded for each render: rendering drops disabled subcharts from the loaded chart.
        with helm_python.Chart.load(str(chart)) as loaded:
            out = loaded.render(values=dict(values), name=release, namespace=namespace,
                                is_install=True)
            name = loaded.name
            if crds:
                for crd in loaded.crds:
                    key = str(crd.get("filename") or f"{name}/{crd.get('name')}")
                    out[key] = str(crd.get("data"))
    except helm_python.HelmError as err:
        raise HelmFailed(_clean(str(err))) from None
    return name, dict(out)


_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)


def _binary_render(chart: Path, release: str, namespace: str, values: Mapping[str, Any],
                   crds: bool) -> tuple[str, dict[str, str]]:
    try:
        return _binary_run(chart, release, namespace, values, crds)
    except HelmFailed as err:
        if "missing in charts/" not in str(err) or not chart.is_dir():
            raise
    # Helm's CLI refuses a chart whose Chart.yaml declares a dependency that charts/ does not
    # hold; the SDK renders it without that subchart. Render a copy without the absent
    # dependencies, so both engines give the chart's own objects (each absent dependency is
    # reported by the caller as not checked). Source keys name the chart, not its folder.
    with tempfile.TemporaryDirectory(prefix="gitops-checker-helm-chart-") as tmp:
        copy_dir = Path(tmp, chart.name)
        shutil.copytree(chart, copy_dir, symlinks=True)
        meta = chart_metadata(copy_dir)
        present = _vendored(copy_dir)
        meta["dependencies"] = [
            d for d in meta.get("dependencies") or []
            if isinstance(d, dict) and (d.get("name") in present or d.get("alias") in present)]
        (copy_dir / CHART_FILE).write_text(yaml.safe_dump(meta, sort_keys=False),
                                           encoding="utf-8")
        (copy_dir / "Chart.lock").unlink(missing_ok=True)
        try:
            return _binary_run(copy_dir, release, namespace, values, crds)
        except HelmFailed as err:
            raise HelmFailed(str(err).replace(str(copy_dir), "<chart>")) from None


def _vendored(chart: Path) -> set[str]:
    """Names of the subcharts in a chart folder's ``charts/`` (folders and archives)."""
    present: set[str] = set()
    folder = chart / "charts"
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_dir():
                present.add(str(chart_metadata(entry).get("name") or entry.name))
            elif entry.suffix == ".tgz":
                present.add(entry.name.rsplit("-", 1)[0])
    return present


def _binary_run(chart: Path, release: str, namespace: str, values: Mapping[str, Any],
                crds: bool) -> tuple[str, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="gitops-checker-helm-") as tmp:
        vfile = Path(tmp, "values.json")
        vfile.write_text(json.dumps(values), encoding="utf-8")
        cmd = ["helm", "template", release, str(chart), "--namespace", namespace,
               "--values", str(vfile)]
        if crds:
            cmd.append("--include-crds")
        env = {**os.environ, "HELM_CACHE_HOME": tmp, "HELM_CONFIG_HOME": tmp,
               "HELM_DATA_HOME": tmp}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                                  check=False, env=env)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise HelmFailed(str(err)) from None
    if proc.returncode != 0:
        raise HelmFailed(_clean(proc.stderr.replace(str(chart), "<chart>")
                                or f"helm exited with {proc.returncode}"))
    out: dict[str, str] = {}
    pieces = _SOURCE.split(proc.stdout)
    name = ""
    for source, text in zip(pieces[1::2], pieces[2::2], strict=False):
        out[source] = out.get(source, "") + "---\n" + text
        name = name or source.split("/", 1)[0]
    return name, out


def _clean(message: str) -> str:
    """Helm's message without Go log lines (they carry timestamps) and trailing blanks."""
    lines = [ln for ln in message.splitlines()
             if not re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", ln)]
    text = "\n".join(lines).strip()
    return re.sub(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d warning:.*$", "", text, flags=re.S).strip()


_render_cache: dict[tuple[Any, ...], tuple[str, dict[str, str]] | HelmFailed] = {}
_cache_lock = threading.Lock()


def _chart_identity(chart: Path) -> str:
    if chart.is_file():
        return hashlib.sha256(chart.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        h.update(path.relative_to(chart).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def helm_render(chart: Path, release: str, namespace: str, values: Mapping[str, Any],
                crds: bool = True) -> tuple[str, dict[str, str]]:
    """Template source key -> rendered text, and the chart's name; once per distinct input.

    Raises ``HelmUnavailable`` or ``HelmFailed``.
    """
    kind = engine()
    key = (kind, str(chart.resolve()), _chart_identity(chart), release, namespace,
           json.dumps(values, sort_keys=True, default=str), crds)
    with _cache_lock:
        hit = _render_cache.get(key)
    if hit is None:
        try:
            hit = (_binary_render if kind == "binary" else _sdk_render)(
                chart, release, namespace, values, crds)
        except HelmFailed as err:
            hit = err
        with _cache_lock:
            _render_cache[key] = hit
    if isinstance(hit, HelmFailed):
        raise hit
    return hit[0], dict(hit[1])


# ---- locations: template lines and the values line a field came from -------------------------

_KEY = re.compile(r"^(\s*)((?:-\s+)*)[\"']?([^\s\"':{][^\"':]*?)[\"']?\s*:(?:\s|$)")
_VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_WITH_VALUES = re.compile(r"\{\{-?\s*(?:with|range\s+(?:\$\w+\s*,\s*)?\$?\w*\s*:?=?)\s*"
                          r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _indent(match: re.Match[str]) -> int:
    return len(match.group(1)) + len(match.group(2))


class _Template:
    """A template's source lines, to find the line that writes a field."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def kind_line(self, kind: str) -> int:
        """1-based line of ``kind: <kind>`` (the first one), or 1."""
        want = re.compile(rf"^\s*kind:\s*[\"']?{re.escape(kind)}[\"']?\s*$")
        for number, text in enumerate(self.lines, 1):
            if want.match(text):
                return number
        return 1

    def _block_end(self, start: int, indent: int) -> int:
        for index in range(start + 1, len(self.lines)):
            text = self.lines[index]
            stripped = text.strip()
            if not stripped or stripped.startswith(("{{", "#")) or stripped == "---":
                if stripped == "---":
                    return index
                continue
            m = _KEY.match(text)
            ind = _indent(m) if m else len(text) - len(text.lstrip())
            if ind <= indent:
                return index
        return len(self.lines)

    def find(self, start: int, path: FieldPath
             ) -> tuple[int | None, FieldPath, tuple[str, ...]]:
        """Follow ``path`` from the line ``start`` (1-based).

        Returns the 0-based line of the deepest key found, the rest of the path not written
        in the template, and the ``.Values`` paths the field's value comes from.
        """
        begin, indent, line = max(start - 1, 0), -1, None
        end = len(self.lines)
        for depth, part in enumerate(path):
            if isinstance(part, int):
                continue
            found = None
            for index in range(begin, end):
                m = _KEY.match(self.lines[index])
                if m and m.group(3) == part and _indent(m) > indent:
                    found = index
                    indent = _indent(m)
                    break
            if found is None:
                rest = path[depth:]
                block = self._values_in_block(line, indent)
                return line, rest, (block,) if block else ()
            line, begin = found, found + 1
            end = self._block_end(found, indent)
        if line is None:
            return None, (), ()
        return line, (), tuple(r[1:] for r in _VALUES_REF.findall(self.lines[line]))

    def _values_in_block(self, line: int | None, indent: int) -> str:
        """The ``.Values.x`` a block's content comes from (``toYaml .Values.x``, ``with``)."""
        if line is None:
            return ""
        end = self._block_end(line, indent)
        for index in range(line + 1, end):
            text = self.lines[index]
            if "toYaml" in text or "include" in text or "tpl" in text:
                ref = _VALUES_REF.search(text)
                if ref:
                    return ref.group(1)[1:]
                if re.search(r"toYaml\s+\.\s", text):
                    return self._enclosing_with(line)
        return ""

    def _enclosing_with(self, line: int) -> str:
        for index in range(line, -1, -1):
            m = _WITH_VALUES.search(self.lines[index])
            if m:
                return m.group(1)[1:]
        return ""


class TemplateMarks(Mapping[FieldPath, SourceLocation]):
    """Field path -> location for one rendered object: template line or values line.

    The rule (docs/helm.md): follow the field's keys through the template; if the template
    writes the value from ``.Values.x`` (directly, or a block through ``toYaml``), the field
    points at the highest-priority values layer that sets ``x`` (plus the rest of the path);
    otherwise at the deepest template line that writes a key of the path. Computed on lookup.
    """

    def __init__(self, template: _Template | None, path: str, start: int,
                 layers: Sequence[ValuesLayer]) -> None:
        self._template = template
        self._path = path
        self._start = start
        self._layers = layers
        self._memo: dict[FieldPath, SourceLocation | None] = {}
        self.defaults = False  # rendered with the chart's defaults, no release named it

    def _resolve(self, key: FieldPath) -> SourceLocation | None:
        if key in self._memo:
            return self._memo[key]
        found: SourceLocation | None = None
        if self._template is not None:
            line, rest, refs = self._template.find(self._start, key)
            best = -1
            for ref in refs:
                rank, where = origin(self._layers, (*ref.split("."), *rest))
                if rank > best:
                    best, found = rank, where
            if found is None and line is not None and not rest and self._path:
                found = SourceLocation(self._path, line + 1)
        self._memo[key] = found
        return found

    def __getitem__(self, key: FieldPath) -> SourceLocation:
        found = self._resolve(tuple(key))
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[FieldPath]:
        return iter(())

    def __len__(self) -> int:
        return 0


def origin(layers: Sequence[ValuesLayer], path: FieldPath
           ) -> tuple[int, SourceLocation | None]:
    """Where the value at ``path`` was set: the highest layer writing it (or a prefix of it).

    Returns the layer's index (higher wins) and the location, or ``(-1, None)``. A layer that
    sets the value but cannot say where (a generated ConfigMap) gives ``(rank, None)``: the
    field then points at its template line, never at a lower layer it overrode.
    """
    for end in range(len(path), 0, -1):
        for rank in range(len(layers) - 1, -1, -1):
            layer = layers[rank]
            if _has(layer.data, path[:end]):
                return rank, layer.locate(path[:end])
    return -1, None


def _has(data: Any, path: FieldPath) -> bool:
    for part in path:
        in_map = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if in_map or in_list:
            data = data[part]
        else:
            return False
    return True


# ---- rendering a chart into Resources --------------------------------------------------------


def _template_file(chart: Path, source: str) -> Path | None:
    """The file in a chart folder a Helm source key names (``name/templates/x.yaml``)."""
    if not chart.is_dir():
        return None
    rest = source.split("/", 1)[1] if "/" in source else source
    candidate = chart / rest
    return candidate if candidate.is_file() else None


def _error_location(message: str, chart: Path, root: Path,
                    fallback: SourceLocation) -> SourceLocation:
    m = re.search(r"(?:^|[\s\"(])([\w.-]+/(?:charts/[\w.-]+/)*templates/[\w./-]+):(\d+)", message)
    if m:
        file = _template_file(chart, m.group(1))
        if file is not None and workspace.resolves_inside(file, root):
            return SourceLocation(relpath(file, root), int(m.group(2)))
    return fallback



def render_chart(chart: Path, root: Path, *, release: str, namespace: str,
                 layers: Sequence[ValuesLayer] = (), declared: SourceLocation | None = None,
                 crds: bool = True, tests: bool = False, what: str = "",
                 post: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
                 home: Path | None = None) -> LoadResult:
    """Render ``chart`` (folder or archive) as release ``release`` in ``namespace``.

    Objects from a chart inside ``root`` (or whose repository folder is ``home``, when a copy
    is rendered) point at their template files; objects from a chart outside it (a fetched
    archive) point at ``declared``. A field set through values points at the values line (see
    :class:`TemplateMarks`). Namespaced objects without a namespace get ``namespace``, as
    ``helm install`` applies them. Test hooks are dropped unless ``tests``. ``post``
    transforms the objects after rendering (Flux post-renderers).
    """
    home = home or chart
    in_repo = home.is_dir() and workspace.resolves_inside(home, root)
    chart_rel = relpath(home, root) if in_repo else ""
    declared = declared or SourceLocation(relpath(home / CHART_FILE, root) if in_repo
                                          else "")
    what = what or f"Helm chart {chart_rel or chart.name}"
    result = LoadResult()
    values: dict[str, Any] = {}
    for layer in layers:
        values = merge_values(values, layer.data)
    try:
        _name, sources = helm_render(chart, release, namespace, values, crds)
    except HelmUnavailable:
        result.not_checked("helm", what, declared.path, "neither the helm binary nor the "
                           "helm-python-sdk package is installed", declared.line)
        return result
    except HelmFailed as err:
        where = _error_location(str(err), home, root, declared) if in_repo else declared
        result.findings.append(input_finding(
            RULE_HELM, f"{what}: helm template failed: {err}", where.path, where.line))
        return result
    objects: list[tuple[dict[str, Any], str]] = []
    for source in sorted(sources):
        if source.endswith("NOTES.txt") or not sources[source].strip():
            continue
        for item in parse_documents(sources[source]):
            if isinstance(item, YamlProblem):
                result.findings.append(input_finding(
                    RULE_HELM, f"{what}: {source} renders invalid YAML: {item.message}",
                    declared.path, declared.line))
                continue
            if item.data is None:
                continue
            if not is_k8s_object(item.data):
                result.findings.append(input_finding(
                    RULE_HELM, f"{what}: {source} renders a document that is not a Kubernetes "
                    "object", declared.path, declared.line))
                continue
            if not tests and _is_test_hook(item.data):
                continue
            objects.append((item.data, source))
    pairs = objects
    if post is not None:
        for number, (body, _source) in enumerate(objects):
            body.setdefault("metadata", {}).setdefault("annotations", {})[_ORIGIN] = str(number)
        try:
            bodies = post([body for body, _source in objects])
        except HelmFailed as err:
            result.findings.append(input_finding(
                RULE_HELM, f"{what}: post-renderer failed: {err}", declared.path,
                declared.line))
            return result
        pairs = []
        for body in bodies:
            found = _pop_origin(body)
            pairs.append((body, objects[found][1] if found is not None
                          and 0 <= found < len(objects) else ""))
    templates: dict[str, _Template] = {}
    archived = _archive_templates(chart) if not in_repo else {}
    for body, source in pairs:
        if body.get("kind") not in CLUSTER_SCOPED:
            meta = body.setdefault("metadata", {})
            if isinstance(meta, dict) and not meta.get("namespace"):
                meta["namespace"] = namespace
        file = _template_file(home, source) if in_repo and source else None
        template: _Template | None = None
        rel, start = "", 1
        location = declared
        if file is not None:
            rel = relpath(file, root)
            if rel not in templates:
                try:
                    templates[rel] = _Template(file.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    templates[rel] = _Template("")
            template = templates[rel]
            start = template.kind_line(str(body.get("kind")))
            location = SourceLocation(rel, start)
            result.files.add(rel)
        elif source in archived:  # a fetched chart: its values lines are still found
            template = archived[source]
            start = template.kind_line(str(body.get("kind")))
        marks = TemplateMarks(template, rel, start, layers)
        result.resources.append(make_resource(body, location, marks))
    result.coverage.append(Coverage("rendered", "helm", what, declared.path, declared.line,
                                    produced=len(result.resources)))
    return result


def _missing_dependencies(chart: Path, values: Mapping[str, Any]) -> list[str]:
    """Enabled dependencies of a chart folder that are not vendored in its ``charts/``.

    The SDK renders a chart without its absent subcharts and says nothing; Helm's CLI refuses.
    Either way the subchart's objects are missing, so each such dependency is reported. A
    dependency whose ``condition`` is false (in the chart's values and the release's) is not
    needed.
    """
    if not chart.is_dir():
        return []
    deps = chart_metadata(chart).get("dependencies")
    if not isinstance(deps, list):
        return []
    present = _vendored(chart)
    defaults: dict[str, Any] = {}
    if (chart / "values.yaml").is_file():
        layer = file_layer(chart / "values.yaml", chart.parent)
        if isinstance(layer, ValuesLayer):
            defaults = dict(layer.data)
    merged = merge_values(defaults, values)
    missing: list[str] = []
    for dep in deps:
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            continue
        name = str(dep.get("alias") or dep["name"])
        if dep["name"] in present or name in present:
            continue
        if _condition(merged, str(dep.get("condition") or "")) is False:
            continue
        missing.append(str(dep["name"]))
    return missing


def _condition(values: Mapping[str, Any], condition: str) -> bool | None:
    """Helm's dependency condition: the first of the comma-separated paths that is a bool."""
    for path in (p.strip() for p in condition.split(",") if p.strip()):
        node: Any = values
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool):
            return node
    return None


MAX_TEMPLATE_BYTES = 4 * 1024 * 1024


def _archive_templates(chart: Path) -> dict[str, _Template]:
    """The templates of a chart archive by Helm source key (read, never extracted)."""
    if not chart.is_file():
        return {}
    out: dict[str, _Template] = {}
    try:
        with tarfile.open(chart, "r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile() or member.size > MAX_TEMPLATE_BYTES:
                    continue
                if "/templates/" not in member.name and "/crds/" not in member.name:
                    continue
                handle = archive.extractfile(member)
                if handle is not None:
                    out[member.name] = _Template(handle.read().decode("utf-8", "replace"))
    except (OSError, tarfile.TarError):
        return {}
    return out


def _is_test_hook(data: Mapping[str, Any]) -> bool:
    annotations = mapping_of(mapping_of(data.get("metadata")).get("annotations"))
    hooks = str(annotations.get("helm.sh/hook", ""))
    return any(h.strip() in TEST_HOOKS for h in hooks.split(","))


def _pop_origin(body: dict[str, Any]) -> int | None:
    meta = mapping_of(body.get("metadata"))
    annotations = mapping_of(meta.get("annotations"))
    raw = annotations.pop(_ORIGIN, None)
    if not annotations and "annotations" in meta:
        del meta["annotations"]
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


# ---- plain chart folders ---------------------------------------------------------------------


def chart_metadata(chart: Path) -> dict[str, Any]:
    """``Chart.yaml`` as a mapping (empty when unreadable)."""
    try:
        data = yaml.load((chart / CHART_FILE).read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def in_chart_home(chart: Path, root: Path) -> bool:
    """Whether a chart folder belongs to a kustomization's ``helmCharts:`` (its chartHome).

    Such a chart is rendered by Kustomize with the kustomization's values, not on its own.
    """
    from checker.load.kustomize import kustomization_file

    top = root.resolve()
    for folder in chart.resolve().parents:
        if folder != top and top not in folder.parents:
            break  # never read outside the repository
        kfile = kustomization_file(folder)
        if kfile is None:
            continue
        try:
            data = yaml.load(kfile.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(data, dict) or not data.get("helmCharts"):
            continue
        home = Path(os.path.normpath(folder / str(data.get("helmGlobals", {}).get(
            "chartHome", "charts") if isinstance(data.get("helmGlobals"), dict) else "charts")))
        if chart.resolve().parent == home.resolve():
            return True
    return False


def render_default(chart: Path, root: Path) -> LoadResult:
    """A chart folder no HelmRelease names: rendered with its default values.

    Release name = the chart's name, namespace ``default``. Render errors (a ``required``
    value without default, say) are a not-checked entry, since no release would apply it so.
    """
    meta = chart_metadata(chart)
    rel = relpath(chart / CHART_FILE, root)
    name = str(meta.get("name") or chart.name)
    what = f"Helm chart {relpath(chart, root)} (default values)"
    if meta.get("type") == "library":
        result = LoadResult(files={rel})
        result.coverage.append(Coverage("rendered", "helm", what, rel, 1,
                                        "library chart: renders no objects of its own"))
        return result
    layer = file_layer(chart / "values.yaml", root) if (chart / "values.yaml").is_file() else None
    layers = [layer] if isinstance(layer, ValuesLayer) else []
    result = render_chart(chart, root, release=_release_name(name), namespace=DEFAULT_NAMESPACE,
                          layers=layers, what=what)
    for res in result.resources:
        if isinstance(res.marks, TemplateMarks):
            res.marks.defaults = True
    for missing in _missing_dependencies(chart, layers[0].data if layers else {}):
        result.not_checked("helm", f"{what} dependency {missing}", rel, f"Chart.yaml declares "
                           f"{missing} but charts/ does not hold it (vendor it to have its "
                           "objects checked)")
    failures = [f for f in result.findings if f.rule_id == RULE_HELM]
    if failures:
        result.findings = [f for f in result.findings if f.rule_id != RULE_HELM]
        for f in failures:
            result.not_checked("helm", what, f.location.path,
                               f.message.removeprefix(what + ": "), f.location.line)
    result.coverage = [replace_reason(c, "no HelmRelease in this scan names it: rendered "
                                      f"with its default values as release {name!r} in "
                                      "namespace 'default'") if c.state == "rendered" else c
                       for c in result.coverage]
    result.files.add(rel)
    return result


def replace_reason(entry: Coverage, reason: str) -> Coverage:
    """The coverage entry with another reason."""
    return Coverage(entry.state, entry.kind, entry.what, entry.path, entry.line, reason,
                    entry.produced)


def _release_name(name: str) -> str:
    """Flux's release name rule: names over 53 characters are shortened with a hash."""
    if len(name) <= MAX_RELEASE_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[:MAX_RELEASE_NAME - 13]}-{digest}"


# ---- Flux HelmReleases -----------------------------------------------------------------------


def is_helm_release(res: Resource) -> bool:
    """A ``helm.toolkit.fluxcd.io`` HelmRelease."""
    return res.kind == "HelmRelease" and res.api_version.startswith(HELM_GROUP + "/")


def this_repository(git_repo: Resource, home: Resource | None = None) -> bool:
    """Whether a GitRepository is the repository being scanned.

    The same rule as the Flux loader's: the ``flux-system/flux-system`` GitRepository (the one
    ``flux bootstrap`` creates for the repository that holds it) is this repository, and so
    is a GitRepository with the same URL as it (``home``); any other is another repository,
    whose charts are reported as not checked.
    """
    if (git_repo.namespace, git_repo.name) == flux_load.THIS_REPOSITORY:
        return True
    if home is None:
        return False
    url = str(mapping_of(git_repo.body.get("spec")).get("url") or "")
    home_url = str(mapping_of(home.body.get("spec")).get("url") or "")
    return bool(url) and flux_load._normal_url(url) == flux_load._normal_url(home_url)


class _Index:
    """The scanned objects a HelmRelease can refer to, by kind, namespace and name."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.by_key: dict[tuple[str, str, str], Resource] = {}
        for res in resources:
            key = (res.kind, res.namespace or "", res.name)
            self.by_key.setdefault(key, res)

    def get(self, kind: str, namespace: str, name: str) -> Resource | None:
        found = self.by_key.get((kind, namespace, name))
        if found is None and namespace == "flux-system":
            found = self.by_key.get((kind, "", name))
        return found


@dataclass
class _Release:
    """What one HelmRelease asks for, resolved as far as this repository allows."""

    res: Resource
    what: str
    where: SourceLocation
    namespace: str
    release: str
    chart: Path | None = None
    home: Path | None = None  # the repository folder of a chart rendered from a copy
    layers: list[ValuesLayer] = field(default_factory=list)
    crds: bool = True
    tests: bool = False
    post: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""
    problem_line: int = 0
    notes: list[str] = field(default_factory=list)
    temp: list[Path] = field(default_factory=list)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _spec_line(res: Resource, *path: str | int) -> int:
    return res.locate(("spec", *path)).line


def expand_releases(loaded: LoadResult, root: Path, settings: HelmSettings | None = None,
                    ) -> None:
    """Render every Flux HelmRelease in ``loaded.resources`` and add what it produces.

    Chart folders rendered with their default values by the loader and used by a release
    are dropped: the release is what Flux applies.
    """
    releases = [r for r in loaded.resources if is_helm_release(r)]
    settings = settings or HelmSettings()
    index = _Index(loaded.resources)
    plans = [_plan(r, index, root, settings) for r in releases]
    used = {relpath(p.home or p.chart, root) for p in plans
            if p.chart is not None and workspace.resolves_inside(p.home or p.chart, root)}
    _drop_defaults(loaded, used)
    if not plans:
        return
    with ThreadPoolExecutor(max_workers=min(4, len(plans))) as pool:
        results = list(pool.map(lambda p: _render_release(p, root), plans))
    for plan, result in zip(plans, results, strict=True):
        loaded.extend(result)
        for tmp in plan.temp:
            shutil.rmtree(tmp, ignore_errors=True)


def _drop_defaults(loaded: LoadResult, used: set[str]) -> None:
    """Drop the default-values render of charts that something renders with real values.

    ``used`` holds the chart folders HelmReleases name; a chart folder whose templates
    other objects already point at (an Argo CD Application rendered it) counts as used too.
    """
    default = "(default values)"
    charts = {c.path.rsplit("/", 1)[0] for c in loaded.coverage
              if c.kind == "helm" and default in c.what}
    if not charts:
        return

    def chart_of(path: str) -> str | None:
        return next((c for c in charts if path.startswith(c + "/")), None)
    for res in loaded.resources:
        chart = chart_of(res.location.path)
        if chart is not None and not _is_default(res):
            used.add(chart)

    def under(path: str) -> bool:
        return any(path == c or path.startswith(c + "/") for c in used)
    loaded.coverage = [c for c in loaded.coverage
                       if not (c.kind == "helm" and default in c.what and under(c.path))]
    loaded.resources = [r for r in loaded.resources
                        if not (_is_default(r) and under(r.location.path))]
    loaded.findings = [f for f in loaded.findings
                       if not (under(f.location.path) and default in f.message)]


def _is_default(res: Resource) -> bool:
    return isinstance(res.marks, TemplateMarks) and res.marks.defaults


def _render_release(plan: _Release, root: Path) -> LoadResult:
    if plan.problem:
        result = LoadResult()
        result.not_checked("helm", plan.what, plan.where.path, plan.problem,
                           plan.problem_line or plan.where.line)
        return result
    assert plan.chart is not None
    post = _post_renderer(plan.post) if plan.post else None
    result = render_chart(plan.chart, root, release=plan.release, namespace=plan.namespace,
                          layers=plan.layers, declared=plan.where, crds=plan.crds,
                          tests=plan.tests, what=plan.what, post=post, home=plan.home)
    values: dict[str, Any] = {}
    for layer in plan.layers:
        values = merge_values(values, layer.data)
    missing = _missing_dependencies(plan.chart, values)
    if missing:  # the chart's own objects are checked; the absent subcharts' are not
        result.findings = [f for f in result.findings if not (
            f.rule_id == RULE_HELM and "missing in charts/" in f.message)]  # helm binary
        for name in missing:
            result.not_checked("helm", f"{plan.what} dependency {name}", plan.where.path,
                               f"Chart.yaml declares {name} but charts/ does not hold it "
                               "(Flux fetches chart dependencies; vendor it to have its "
                               "objects checked)", plan.where.line)
    if plan.notes:
        result.coverage = [replace_reason(c, "; ".join(plan.notes))
                           if c.state == "rendered" else c for c in result.coverage]
    return result


def _plan(res: Resource, index: _Index, root: Path, settings: HelmSettings) -> _Release:
    spec = mapping_of(res.body.get("spec"))
    ns = res.namespace or DEFAULT_NAMESPACE
    target = _str(spec.get("targetNamespace"))
    default_name = f"{target}-{res.name}" if target else res.name
    release = _str(spec.get("releaseName")) or default_name
    plan = _Release(res=res, what=f"HelmRelease {ns}/{res.name}", where=res.location,
                    namespace=target or ns, release=_release_name(release))
    install = mapping_of(spec.get("install"))
    plan.crds = _str(install.get("crds") or "Create") != "Skip"
    plan.tests = bool(mapping_of(spec.get("test")).get("enable"))
    try:
        _resolve_chart(plan, spec, index, root, settings)
        if not plan.problem:
            _resolve_values(plan, spec, index)
        if not plan.problem:
            _resolve_post(plan, spec)
    except helmfetch.FetchRefused as err:
        plan.problem = f"the chart was not fetched: {err}"
    return plan


def _fail(plan: _Release, reason: str, *path: str | int) -> None:
    plan.problem = reason
    plan.problem_line = _spec_line(plan.res, *path) if path else 0


def _resolve_chart(plan: _Release, spec: Mapping[str, Any], index: _Index, root: Path,
                   settings: HelmSettings) -> None:
    ns = plan.res.namespace or DEFAULT_NAMESPACE
    fetcher = helmfetch.Fetcher(settings.allowed_hosts, settings.cache_dir)
    chart_ref = mapping_of(spec.get("chartRef"))
    if chart_ref:
        kind = _str(chart_ref.get("kind"))
        name = _str(chart_ref.get("name"))
        ref_ns = _str(chart_ref.get("namespace")) or ns
        source = index.get(kind, ref_ns, name)
        if kind not in ("OCIRepository", "HelmChart"):
            return _fail(plan, f"spec.chartRef kind {kind or '(none)'!r} is not rendered here "
                         "(OCIRepository and HelmChart are)", "chartRef", "kind")
        if source is None:
            return _fail(plan, f"{kind} {ref_ns}/{name} is not among the scanned objects",
                         "chartRef")
        src_spec = mapping_of(source.body.get("spec"))
        if kind == "OCIRepository":
            ref = mapping_of(src_spec.get("ref"))
            url = _str(src_spec.get("url"))
            version = _str(ref.get("tag")) or _str(ref.get("semver"))
            if not url.startswith("oci://"):
                return _fail(plan, f"OCIRepository {ref_ns}/{name} has no oci:// URL",
                             "chartRef")
            path, chosen = fetcher.oci_chart(url, version, _str(ref.get("digest")),
                                             plain_http=bool(src_spec.get("insecure")))
            plan.chart = path
            plan.notes.append(f"chart {url}:{chosen} from OCIRepository {ref_ns}/{name}")
            return None
        chart_spec = src_spec
        chart_ns = ref_ns
    else:
        chart_spec = mapping_of(mapping_of(spec.get("chart")).get("spec"))
        chart_ns = ns
        if not chart_spec:
            return _fail(plan, "neither spec.chart.spec nor spec.chartRef is set")
    chart_name = _str(chart_spec.get("chart"))
    version = _str(chart_spec.get("version"))
    src = mapping_of(chart_spec.get("sourceRef"))
    kind, name = _str(src.get("kind")), _str(src.get("name"))
    src_ns = _str(src.get("namespace")) or chart_ns
    source = index.get(kind, src_ns, name)
    if source is None:
        return _fail(plan, f"chart source {kind or '?'} {src_ns}/{name or '?'} is not among "
                     "the scanned objects", "chart", "spec", "sourceRef")
    src_spec = mapping_of(source.body.get("spec"))
    values_files = [str(v) for v in chart_spec.get("valuesFiles") or [] if isinstance(v, str)]
    if kind == "GitRepository":
        if not this_repository(source, index.get("GitRepository",
                                                 *flux_load.THIS_REPOSITORY)):
            return _fail(plan, f"GitRepository {src_ns}/{name} is not this repository (only "
                         "flux-system/flux-system and GitRepositories with its URL are)",
                         "chart", "spec", "sourceRef")
        home = index.get("GitRepository", *flux_load.THIS_REPOSITORY)
        why = flux_load.ref_problem(src_spec, mapping_of(home.body.get("spec"))
                                    if home is not None else None, flux_load.checkout_of(root))
        if why:
            return _fail(plan, f"GitRepository {src_ns}/{name} is this repository, but {why}",
                         "chart", "spec", "sourceRef")
        chart = Path(os.path.normpath(root / chart_name.strip().lstrip("/")))
        if not workspace.resolves_inside(chart, root) or not (chart / CHART_FILE).is_file():
            return _fail(plan, f"chart path {chart_name!r} is not a chart folder in this "
                         "repository", "chart", "spec", "chart")
        from checker.load.kustomize import links_out

        leaving = links_out(chart, root)  # Helm reads what a chart's symlinks point at
        if leaving:
            return _fail(plan, f"{relpath(leaving[0][0], root)} resolves to {leaving[0][1]}, "
                         "outside the repository; the chart was not rendered",
                         "chart", "spec", "chart")
        plan.chart = chart
        return _values_files(plan, chart, root, values_files, root)
    if kind == "HelmRepository":
        url = _str(src_spec.get("url"))
        if _str(src_spec.get("type")) == "oci" or url.startswith("oci://"):
            path, chosen = fetcher.oci_chart(f"{url.rstrip('/')}/{chart_name}", version,
                                             plain_http=bool(src_spec.get("insecure")))
        else:
            path, chosen = fetcher.http_chart(url, chart_name, version)
        plan.chart = path
        plan.notes.append(f"chart {chart_name} {chosen} from {url}")
        if values_files:
            return _fail(plan, "valuesFiles of a fetched chart are not read here, so the "
                         "values the cluster uses are unknown", "chart", "spec", "valuesFiles")
        return None
    return _fail(plan, f"chart source kind {kind or '(none)'!r} is not rendered here "
                 "(GitRepository, HelmRepository, OCIRepository and HelmChart are)",
                 "chart", "spec", "sourceRef", "kind")


def _values_files(plan: _Release, chart: Path, root: Path, files: list[str],
                  base: Path) -> None:
    """Chart defaults: ``values.yaml``, or the merged ``valuesFiles`` that replace it."""
    if not files:
        if (chart / "values.yaml").is_file():
            layer = file_layer(chart / "values.yaml", root)
            if isinstance(layer, ValuesLayer):
                plan.layers.append(layer)
        return None
    layers: list[ValuesLayer] = []
    for text in files:
        file = Path(os.path.normpath(base / text.strip().lstrip("/")))
        if not workspace.resolves_inside(file, root) or not file.is_file():
            return _fail(plan, f"values file {text!r} does not exist in this repository",
                         "chart", "spec", "valuesFiles")
        layer = file_layer(file, root)
        if isinstance(layer, str):
            return _fail(plan, layer, "chart", "spec", "valuesFiles")
        layers.append(layer)
    # Flux packages the chart with the merged valuesFiles as its values.yaml.
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge_values(merged, layer.data)
    tmp = Path(tempfile.mkdtemp(prefix="gitops-checker-chart-"))
    plan.temp.append(tmp)
    copy_dir = tmp / chart.name
    shutil.copytree(chart, copy_dir, symlinks=False)
    (copy_dir / "values.yaml").write_text(json.dumps(merged), encoding="utf-8")
    plan.layers.extend(layers)
    plan.notes.append(f"values.yaml replaced by valuesFiles {', '.join(files)}")
    plan.chart, plan.home = copy_dir, chart
    return None


_SOPS = "sops"


def _resolve_values(plan: _Release, spec: Mapping[str, Any], index: _Index) -> None:
    ns = plan.res.namespace or DEFAULT_NAMESPACE
    for number, entry in enumerate(spec.get("valuesFrom") or []):
        entry = mapping_of(entry)
        kind, name = _str(entry.get("kind")), _str(entry.get("name"))
        key = _str(entry.get("valuesKey")) or "values.yaml"
        target = _str(entry.get("targetPath"))
        optional = bool(entry.get("optional"))
        at = ("valuesFrom", number)
        if kind not in ("ConfigMap", "Secret"):
            return _fail(plan, f"valuesFrom kind {kind!r} is not ConfigMap or Secret", *at)
        source = index.get(kind, ns, name)
        if source is None:
            if optional:
                plan.notes.append(f"optional valuesFrom {kind} {ns}/{name} is not in the "
                                  "repository: rendered without it")
                continue
            return _fail(plan, f"valuesFrom {kind} {ns}/{name} is not among the scanned "
                         "objects, so the values the cluster uses are unknown", *at)
        if kind == "Secret" and _SOPS in source.body:
            return _fail(plan, f"valuesFrom Secret {ns}/{name} is SOPS-encrypted", *at)
        raw, located = _config_value(source, key)
        if raw is None:
            if optional:
                plan.notes.append(f"optional key {key!r} of {kind} {ns}/{name} is absent")
                continue
            return _fail(plan, f"{kind} {ns}/{name} has no key {key!r}", *at)
        if target:
            here = located(())

            def locate_target(path: FieldPath, here: SourceLocation | None = here
                              ) -> SourceLocation | None:
                return here
            plan.layers.append(ValuesLayer(_set_path({}, target, raw), locate_target,
                                           f"{kind} {name}"))
            continue
        try:
            docs = [d for d in parse_documents(raw) if not isinstance(d, YamlProblem)]
        except RecursionError:
            docs = []
        parsed: Any = docs[0].data if docs else None
        if parsed is None:
            parsed = {}
        if not isinstance(parsed, dict):
            return _fail(plan, f"{kind} {ns}/{name} key {key!r} is not a YAML mapping", *at)
        spans = docs[0].spans if docs else {}
        plan.layers.append(ValuesLayer(parsed, _embedded(spans, located, kind == "Secret"),
                                       f"{kind} {name}"))
    inline = mapping_of(spec.get("values"))
    if inline:
        res = plan.res

        def locate_inline(path: FieldPath) -> SourceLocation | None:
            return res.marks.get(("spec", "values", *path))
        plan.layers.append(ValuesLayer(inline, locate_inline, "spec.values"))
    return None


def _config_value(source: Resource, key: str
                  ) -> tuple[str | None, Callable[[FieldPath], SourceLocation | None]]:
    body = source.body
    for field_name in ("data", "stringData", "binaryData"):
        values = mapping_of(body.get(field_name))
        if key in values:
            raw = values[key]
            text = str(raw) if raw is not None else ""
            if (source.kind == "Secret" and field_name == "data") or field_name == "binaryData":
                try:
                    text = base64.b64decode(text).decode("utf-8")
                except (ValueError, UnicodeDecodeError):
                    return None, lambda _p: None
            mark = source.marks.get((field_name, key))

            def located(path: FieldPath, mark: SourceLocation | None = mark
                        ) -> SourceLocation | None:
                return mark
            return text, located
    return None, lambda _p: None


def _embedded(spans: Mapping[FieldPath, tuple[int, int, int, int]],
              located: Callable[[FieldPath], SourceLocation | None], secret: bool) -> LocateFn:
    """Locations inside a values text held in a ConfigMap key (a block scalar)."""
    def locate(path: FieldPath) -> SourceLocation | None:
        base = located(())
        if base is None:
            return None
        span = spans.get(tuple(path))
        if span is None or secret or base.end_line is None or base.end_line == base.line:
            return base  # a Secret's lines are not shown; a one-line value: its key
        return SourceLocation(base.path, base.line + span[0], span[1] + 1)
    return locate


def _set_path(data: dict[str, Any], dotted: str, raw: str) -> dict[str, Any]:
    """``targetPath`` as Helm's ``--set`` reads it: dotted keys, the value typed."""
    try:
        import helm_python
        parsed: dict[str, Any] = helm_python.parse_set_string(f"{dotted}={raw}")
        return parsed
    except Exception:  # no SDK, or an expression it rejects: a plain dotted set
        pass
    parts = [p for p in re.split(r"(?<!\\)\.", dotted) if p]
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part.replace("\\.", "."), {})
    node[parts[-1].replace("\\.", ".")] = raw
    return data


def _resolve_post(plan: _Release, spec: Mapping[str, Any]) -> None:
    for number, entry in enumerate(spec.get("postRenderers") or []):
        kust = mapping_of(mapping_of(entry).get("kustomize"))
        if not kust:
            return _fail(plan, "a post-renderer that is not kustomize is not rendered here",
                         "postRenderers", number)
        plan.post.append(kust)
    return None


def _post_renderer(steps: list[dict[str, Any]]
                   ) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Flux's Kustomize post-renderers (patches, images), run with the real Kustomize."""
    from checker.load import kustomize

    def run(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for step in steps:
            with tempfile.TemporaryDirectory(prefix="gitops-checker-postrender-") as tmp:
                Path(tmp, "objects.yaml").write_text(
                    yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
                kfile: dict[str, Any] = {"resources": ["objects.yaml"]}
                for key in ("patches", "images", "patchesStrategicMerge", "patchesJson6902"):
                    if step.get(key):
                        kfile[key] = step[key]
                Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(kfile),
                                                           encoding="utf-8")
                try:
                    proc = subprocess.run([*kustomize.command(), tmp], capture_output=True,
                                          text=True, timeout=TIMEOUT_SECONDS, check=False)
                except kustomize.KustomizeUnavailable:
                    raise HelmFailed("neither kustomize nor kubectl is installed") from None
                except (OSError, subprocess.TimeoutExpired) as err:
                    raise HelmFailed(str(err)) from None
                if proc.returncode != 0:
                    raise HelmFailed(proc.stderr.replace(tmp, "<post-render>").strip())
                objects = [d for d in yaml.load_all(proc.stdout, Loader=SAFE_LOADER)
                           if isinstance(d, dict)]
        return objects
    return run
