"""Follow Argo CD ``Application`` and ``ApplicationSet`` objects and render what they deploy.

An Argo CD repository declares its workloads through Applications: a cluster folder holds
``argoproj.io/v1alpha1`` Applications (or ApplicationSets that generate them), and each one
points at a path of a Git repository. This module finds those objects among the resources a
cluster's paths loaded, renders each source that lives in *this* repository the way Argo CD's
repo-server does, and repeats for Applications that the rendered output holds (app-of-apps).

* **Which repository is this one**: a source's ``repoURL`` is compared, normalised (scheme,
  user, ``.git`` suffix, trailing slash and host case dropped; ``git@host:org/repo`` is
  ``host/org/repo``), with the URLs of ``argocd.repoURLs`` in the trusted config, with
  ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY`` when a workflow sets them, and with the checkout's
  ``origin`` remote when the root is the top of a git work tree. Anything else is another
  repository: not checked, with a finding.
* **Source types**, as the repo-server decides them: an explicit ``plugin`` is not checked;
  an explicit ``helm``, ``kustomize`` or ``directory`` wins; otherwise ``Chart.yaml`` means Helm
  and a kustomization file means Kustomize, else a directory of manifests.
* **Directory**: ``*.yaml``, ``*.yml`` and ``*.json`` files of the path (``recurse`` for
  sub-folders), filtered by ``include``/``exclude`` globs matched against the path relative to
  the source folder (``*`` also crosses ``/``; ``{a,b}`` alternatives). Jsonnet files and
  ``directory.jsonnet`` settings are not checked.
* **Kustomize**: an overlay kustomization is written to a temporary folder (its ``resources``
  is the source folder) carrying ``namePrefix``, ``nameSuffix``, ``namespace``, ``images``,
  ``replicas``, ``commonLabels``/``labels``, ``commonAnnotations``, ``patches`` and
  ``components``, and rendered with the real Kustomize (``checker.load.kustomize``).
* **Helm**: the chart folder (or a chart fetched from a ``helm.allowedHosts`` host) is rendered
  with the real Helm (``checker.load.helm.render_chart``) with
  ``valueFiles`` (relative to the chart, or ``$ref/...`` from another source of a multi-source
  Application), then ``values``/``valuesObject``, then ``parameters`` (``--set`` /
  ``--set-string``) and ``fileParameters``; ``releaseName`` (default: the Application's name)
  and the destination namespace are the release's name and namespace.
* **Destination**: ``spec.destination.namespace`` is given to every namespaced object that has
  no namespace (as Argo CD does when it applies). ``spec.destination.name`` or ``server`` picks
  the configured cluster through ``argocd.destinations``; an Application targeting another
  configured cluster is checked there.
* **ApplicationSet**: ``list`` and ``git`` (``directories`` and ``files``, over this repository)
  generators, with ``{{param}}`` templates or ``goTemplate`` (the subset of Go templates
  and sprig in ``checker.load.gotemplate``); other generators are not checked.

Every Application and ApplicationSet becomes a coverage entry of kind ``argocd``: ``rendered``
(with how many objects it produced), ``followed`` (an ApplicationSet expanded, an Application
checked in another cluster) or ``not-checked`` (with the reason, also an ``input.not-checked``
finding). Objects keep the positions of the files they come from: manifests and Kustomize
sources to the line; Helm output to its template, and to the line that set a value.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from checker.load import gotemplate, helmfetch, kustomize, workspace
from checker.load import helm as helm_load
from checker.load.flux import CLUSTER_SCOPED
from checker.load.objects import (
    RULE_MISSING_PATH,
    LoadResult,
    input_finding,
    load_file,
    make_resource,
    read_documents,
    relpath,
)
from checker.model import Coverage, FieldPath, Resource, SourceLocation

ARGO_GROUP = "argoproj.io"
DEFAULT_NAMESPACE = "argocd"
KIND = "argocd"
RULE_ARGOCD = "input.argocd-error"
MAX_APPS = 2000          # Applications followed per cluster, app-of-apps included
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
JSONNET_SUFFIXES = (".jsonnet", ".libsonnet")
_SKIP_DIRS = frozenset({".git"})


@dataclass(frozen=True)
class ArgoSettings:
    """What the trusted config says about Argo CD.

    ``repo_urls``: normalised URLs that mean this repository. ``destinations``: Argo CD
    destination name or server URL -> configured cluster name. ``cluster_paths``: each named
    cluster's paths, to tell whether an Application targeting it is checked there.
    """

    repo_urls: tuple[str, ...] = ()
    destinations: tuple[tuple[str, str], ...] = ()
    cluster_paths: tuple[tuple[str, tuple[Path, ...]], ...] = field(default=(), compare=False)
    detect_remote: bool = True   # also accept $GITHUB_REPOSITORY and the checkout's origin

    def target(self, name: str, server: str) -> str | None:
        """The configured cluster an Argo CD destination maps to, if any."""
        mapping = dict(self.destinations)
        if name and name in mapping:
            return mapping[name]
        if server:
            for key in (server, server.rstrip("/")):
                if key in mapping:
                    return mapping[key]
        return None


def normalise_repo_url(url: str) -> str:
    """A repository URL reduced to ``host/path`` for comparison."""
    text = url.strip()
    match = re.match(r"^[\w.-]+@([\w.-]+):(?!\d+/)(.*)$", text)  # scp-like git@host:org/repo
    if match:
        text = f"{match.group(1)}/{match.group(2)}"
    else:
        text = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", text)
        text = re.sub(r"^[^/@]*@", "", text)
    host, _, path = text.partition("/")
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host.lower()}/{path}".rstrip("/")


def settings_from_config(data: Mapping[str, Any] | None,
                         clusters: Mapping[str, Sequence[Path]]) -> ArgoSettings:
    """``ArgoSettings`` from the ``argocd`` section of ``.gitops-checker.yaml``."""
    data = data or {}
    urls = tuple(dict.fromkeys(normalise_repo_url(str(u)) for u in data.get("repoURLs", [])))
    destinations = tuple(sorted((str(k), str(v))
                                for k, v in (data.get("destinations") or {}).items()))
    return ArgoSettings(
        repo_urls=urls, destinations=destinations,
        cluster_paths=tuple((name, tuple(paths)) for name, paths in clusters.items()),
        detect_remote=bool(data.get("detectRepoURL", True)),
    )


def _git(root: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        proc = subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def detected_repo_urls(root: Path) -> tuple[str, ...]:
    """URLs of this checkout known without config: the workflow's repository, ``origin``."""
    urls: list[str] = []
    repo = os.environ.get("GITHUB_REPOSITORY", "")
    if repo:
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        urls.append(normalise_repo_url(f"{server}/{repo}"))
    top = _git(root, "rev-parse", "--show-toplevel")
    if top and Path(top).resolve() == root.resolve():
        origin = _git(root, "remote", "get-url", "origin")
        if origin:
            urls.append(normalise_repo_url(origin))
    return tuple(dict.fromkeys(urls))


def is_argo_app(res: Resource) -> bool:
    """An ``argoproj.io`` Application or ApplicationSet."""
    return res.kind in ("Application", "ApplicationSet") and res.group == ARGO_GROUP


# --- small helpers -------------------------------------------------------------------------

def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _Prefixed(Mapping[FieldPath, SourceLocation]):
    """The marks of a sub-object (an ApplicationSet's template) as if it were the root."""

    def __init__(self, base: Mapping[FieldPath, SourceLocation], prefix: FieldPath) -> None:
        self._base = base
        self._prefix = prefix

    def __getitem__(self, key: FieldPath) -> SourceLocation:
        return self._base[self._prefix + tuple(key)]

    def __iter__(self) -> Iterator[FieldPath]:
        n = len(self._prefix)
        return (k[n:] for k in self._base if tuple(k[:n]) == self._prefix)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def glob_regex(pattern: str, cross_slash: bool = True) -> re.Pattern[str]:
    """A glob as Argo CD matches it: ``?``, ``[...]``, ``{a,b}`` and ``*``.

    For ``directory.include``/``exclude`` ``*`` also crosses ``/``; for the ApplicationSet git
    generator (``cross_slash=False``) only ``**`` does.
    """
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            double = i + 1 < len(pattern) and pattern[i + 1] == "*"
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(".*" if cross_slash or double else "[^/]*")
        elif ch == "?":
            out.append("." if cross_slash else "[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif ch == "{":
            depth += 1
            out.append("(?:")
        elif ch == "}" and depth:
            depth -= 1
            out.append(")")
        elif ch == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(ch))
        i += 1
    out.append(")" * depth)
    return re.compile("".join(out) + r"\Z", re.DOTALL)




# --- Helm ----------------------------------------------------------------------------------

def _set_values(expression: str, force_string: bool) -> dict[str, Any]:
    """A Helm ``--set`` (or ``--set-string``) expression as values, parsed by Helm itself."""
    import helm_python

    parse = helm_python.parse_set_string_values if force_string else helm_python.parse_set_string
    parsed: dict[str, Any] = parse(expression)
    return parsed


# --- ApplicationSet templates ----------------------------------------------------------------

_FAST = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


class TemplateUnsupported(Exception):
    """A template expression this module does not evaluate."""


def _render_text(text: str, params: Mapping[str, Any], go: bool,
                 options: Sequence[str] = ()) -> str:
    if go:
        try:
            return gotemplate.render(text, params, options)
        except gotemplate.Unsupported as err:
            raise TemplateUnsupported(f"Go template {text!r}: {err} is not evaluated (see "
                                      "docs/argocd.md for the subset that is)") from None
        except gotemplate.TemplateError as err:
            raise TemplateUnsupported(f"Go template {text!r} fails as Argo CD executes it "
                                      f"({err}), so Argo CD generates no Applications from "
                                      "this ApplicationSet") from None

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in params:
            return str(params[key])
        return m.group(0)  # fasttemplate leaves unknown parameters as written
    return _FAST.sub(one, text)


def render_template(value: Any, params: Mapping[str, Any], go: bool,
                    options: Sequence[str] = ()) -> Any:
    """An ApplicationSet template with its parameters filled in, string by string (with
    ``goTemplate``, each string is a Go template executed with ``options``)."""
    if isinstance(value, dict):
        return {_render_text(k, params, go, options) if isinstance(k, str) else k:
                render_template(v, params, go, options) for k, v in value.items()}
    if isinstance(value, list):
        return [render_template(v, params, go, options) for v in value]
    if isinstance(value, str) and "{{" in value:
        return _render_text(value, params, go, options)
    return value


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = "" if value is None else (
            json.dumps(value) if isinstance(value, bool) else str(value))
    return out


def _path_params(rel: str, go: bool) -> dict[str, Any]:
    parts = [p for p in rel.split("/") if p]
    base = parts[-1] if parts else ""
    normalized = re.sub(r"[^a-zA-Z0-9-]", "-", base).lower()
    if go:
        return {"path": {"path": rel, "basename": base, "basenameNormalized": normalized,
                         "segments": parts}}
    out: dict[str, Any] = {"path": rel, "path.basename": base,
                           "path.basenameNormalized": normalized}
    out.update({f"path[{i}]": p for i, p in enumerate(parts)})
    return out


# --- the follower ----------------------------------------------------------------------------

@dataclass
class _Run:
    """State of one cluster's Argo CD walk."""

    root: Path
    cluster: str
    settings: ArgoSettings
    result: LoadResult
    repo_urls: tuple[str, ...] | None = None
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    helm: helm_load.HelmSettings = field(default_factory=helm_load.HelmSettings)
    remote_hosts: tuple[str, ...] = ()   # remote Kustomize bases the trusted config allows
    charts: set[str] = field(default_factory=set)   # chart folders Applications rendered

    def urls(self) -> tuple[str, ...]:
        if self.repo_urls is None:
            detected = detected_repo_urls(self.root) if self.settings.detect_remote else ()
            self.repo_urls = tuple(dict.fromkeys([*self.settings.repo_urls, *detected]))
        return self.repo_urls

    def local(self, repo_url: str) -> bool:
        return bool(repo_url) and normalise_repo_url(repo_url) in self.urls()


def _label(res: Resource) -> str:
    return f"{res.kind} {res.namespace or DEFAULT_NAMESPACE}/{res.name}"


def follow(loaded: LoadResult, cluster: str, settings: ArgoSettings, root: Path,
           helm: helm_load.HelmSettings | None = None,
           remote_hosts: tuple[str, ...] = ()) -> LoadResult:
    """Render every Argo CD Application among ``loaded.resources`` into ``loaded``, in place.

    Applications found in what an Application renders are followed too (app-of-apps); each
    Application is rendered once per cluster. ``helm`` says which hosts remote charts may
    come from, ``remote_hosts`` which remote Kustomize bases may be fetched. Returns ``loaded``.
    """
    queue = [r for r in loaded.resources if is_argo_app(r)]
    if not queue:
        return loaded
    run = _Run(root, cluster, settings, loaded, helm=helm or helm_load.HelmSettings(),
               remote_hosts=tuple(remote_hosts))
    rendered: list[Resource] = []
    while queue:
        res = queue.pop(0)
        ident = (res.kind, res.namespace or DEFAULT_NAMESPACE, res.name)
        if ident in run.seen:
            continue
        run.seen.add(ident)
        if len(run.seen) > MAX_APPS:
            loaded.not_checked(KIND, _label(res), res.location.path,
                               f"more than {MAX_APPS} Argo CD applications", res.location.line)
            continue
        if res.kind == "ApplicationSet":
            queue[:0] = _expand(res, run)
            continue
        produced = _application(res, run)
        rendered.extend(produced)
        queue.extend(r for r in produced if is_argo_app(r))
    if run.charts:  # chart folders the loader rendered with default values: the app decides
        helm_load._drop_defaults(loaded, run.charts)
    loaded.resources = without_duplicates(loaded.resources, rendered)
    loaded.resources.extend(rendered)
    loaded.resources.sort(key=lambda r: (r.location.path, r.location.line, r.key))
    return loaded


def _identity(res: Resource) -> tuple[object, ...]:
    body = copy.deepcopy(dict(res.body))
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta.pop("namespace", None)
    return (res.location, res.group, res.kind, res.name,
            json.dumps(body, sort_keys=True, default=str))


def without_duplicates(plain: list[Resource], rendered: list[Resource]) -> list[Resource]:
    """The loaded objects that are not also what an Application deploys.

    A folder both loaded as a cluster path and deployed through an Application would be
    checked twice, once without the Application's namespace; the Application's copy stays.
    """
    if not rendered:
        return plain
    mine = {_identity(r) for r in rendered}
    return [r for r in plain if is_argo_app(r) or _identity(r) not in mine]


def _where(res: Resource, *path: str | int) -> SourceLocation:
    return res.locate(tuple(path))


# --- ApplicationSet ----------------------------------------------------------------------------

def _expand(appset: Resource, run: _Run) -> list[Resource]:
    spec = _map(appset.body.get("spec"))
    go = spec.get("goTemplate") is True
    options = [str(o) for o in _list(spec.get("goTemplateOptions"))] if go else []
    template = _map(spec.get("template"))
    label = _label(appset)
    loc = appset.location
    if spec.get("templatePatch"):
        run.result.not_checked(KIND, label, loc.path, "templatePatch is not evaluated",
                               _where(appset, "spec", "templatePatch").line)
        return []
    apps: list[Resource] = []
    for index, generator in enumerate(_list(spec.get("generators"))):
        gen = _map(generator)
        where = _where(appset, "spec", "generators", index)
        params_list = _generator_params(gen, go, appset, index, run)
        if params_list is None:
            continue
        for params in params_list:
            try:
                body = render_template(copy.deepcopy(template),
                                       gotemplate.from_json(params) if go else params, go,
                                       options)
            except TemplateUnsupported as err:
                run.result.not_checked(KIND, label, loc.path, str(err), where.line)
                return []
            body = {"apiVersion": appset.api_version.replace("ApplicationSet", "Application"),
                    "kind": "Application", **body}
            meta = body.setdefault("metadata", {})
            if isinstance(meta, dict) and not meta.get("namespace"):
                meta["namespace"] = appset.namespace or DEFAULT_NAMESPACE
            marks = _Prefixed(appset.marks, ("spec", "template"))
            tloc = appset.locate(("spec", "template"))
            apps.append(make_resource(body, tloc, marks))
    run.result.coverage.append(Coverage(
        "followed", KIND, label, loc.path, loc.line,
        f"{len(apps)} Application{'' if len(apps) == 1 else 's'} generated", len(apps)))
    return apps


def _generator_params(gen: Mapping[str, Any], go: bool, appset: Resource, index: int,
                      run: _Run) -> list[dict[str, Any]] | None:
    label = _label(appset)
    loc = appset.location
    where = _where(appset, "spec", "generators", index)
    if "list" in gen and len(gen) == 1:
        elements = _list(_map(gen["list"]).get("elements"))
        if _map(gen["list"]).get("elementsYaml"):
            run.result.not_checked(KIND, label, loc.path,
                                   "list generator elementsYaml is not evaluated", where.line)
            return None
        out: list[dict[str, Any]] = []
        for element in elements:
            if not isinstance(element, dict):
                continue
            if go:
                out.append(dict(element))
            else:
                flat = {str(k): v if isinstance(v, str) else json.dumps(v)
                        for k, v in element.items() if not isinstance(v, (dict, list))}
                flat.update({f"{k}.{sk}": sv for k, v in element.items()
                             if isinstance(v, dict) for sk, sv in _flatten(v).items()})
                out.append(flat)
        return out
    if "git" in gen and len(gen) == 1:
        return _git_params(_map(gen["git"]), go, appset, index, run)
    kinds = ", ".join(sorted(str(k) for k in gen)) or "an empty generator"
    run.result.not_checked(KIND, label, loc.path,
                           f"generator {kinds} is not evaluated (only list and git generators "
                           "over this repository are)", where.line)
    return None


def _git_params(git: Mapping[str, Any], go: bool, appset: Resource, index: int,
                run: _Run) -> list[dict[str, Any]] | None:
    label = _label(appset)
    loc = appset.location
    where = _where(appset, "spec", "generators", index, "git", "repoURL")
    repo_url = _str(git.get("repoURL"))
    if not run.local(repo_url):
        run.result.not_checked(KIND, label, loc.path,
                               f"git generator reads {repo_url or 'no repoURL'}, which is not "
                               "this repository (set argocd.repoURLs)", where.line)
        return None
    files = sorted(_repo_paths(run.root, True))
    dirs = sorted(_repo_paths(run.root, False))
    out: list[dict[str, Any]] = []
    if git.get("directories"):
        include: set[str] = set()
        exclude: set[str] = set()  # exclusions win, whatever their order (as in Argo CD)
        for entry in _list(git.get("directories")):
            entry = _map(entry)
            pattern = glob_regex(_str(entry.get("path")).strip("/"), cross_slash=False)
            matched = {d for d in dirs if pattern.match(d)}
            (exclude if entry.get("exclude") is True else include).update(matched)
        out.extend(_path_params(rel, go) for rel in sorted(include - exclude))
    for entry in _list(git.get("files")):
        entry = _map(entry)
        pattern = glob_regex(_str(entry.get("path")).strip("/"), cross_slash=False)
        for rel in files:
            if not pattern.match(rel):
                continue
            docs, problems = read_documents(run.root / rel, rel, run.root)  # no links out
            if problems:
                run.result.findings.extend(problems)
                run.result.not_checked(KIND, f"{label} git generator file {rel}", loc.path,
                                       "the file cannot be read", where.line)
                continue
            data = docs[0].data if docs else None
            items = data if isinstance(data, list) else [data]
            parent = str(Path(rel).parent)
            parent = "" if parent == "." else parent
            for item in items:
                if not isinstance(item, dict):
                    continue
                params: dict[str, Any] = dict(item) if go else dict(_flatten(item))
                params.update(_path_params(parent, go))
                if go:
                    params["path"]["filename"] = Path(rel).name
                else:
                    params["path.filename"] = Path(rel).name
                out.append(params)
    return out


def _repo_paths(root: Path, want_files: bool) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        base = Path(dirpath)
        if want_files:
            for name in filenames:
                yield (base / name).relative_to(root).as_posix()
        else:
            for name in dirnames:
                yield (base / name).relative_to(root).as_posix()


# --- Application -------------------------------------------------------------------------------

def _application(app: Resource, run: _Run) -> list[Resource]:
    """Render one Application; returns the objects it deploys (already in the cluster's
    namespace), records coverage and findings."""
    spec = _map(app.body.get("spec"))
    label = _label(app)
    loc = app.location
    dest = _map(spec.get("destination"))
    target = run.settings.target(_str(dest.get("name")), _str(dest.get("server")))
    if target is not None and target != run.cluster and run.cluster:
        paths = dict(run.settings.cluster_paths).get(target)
        if paths is None:
            run.result.not_checked(
                KIND, label, loc.path, f"its destination maps to cluster {target!r}, which is "
                "not configured", _where(app, "spec", "destination").line)
        elif any(workspace.resolves_inside(run.root / loc.path, p) for p in paths):
            run.result.coverage.append(Coverage(
                "followed", KIND, label, loc.path, loc.line,
                f"targets cluster {target}; checked there"))
        else:
            run.result.not_checked(
                KIND, label, loc.path, f"it targets cluster {target!r}, whose paths do not "
                f"include {loc.path}", _where(app, "spec", "destination").line)
        return []
    sources: list[tuple[Mapping[str, Any], FieldPath]]
    if "sources" in spec and isinstance(spec.get("sources"), list):
        sources = [(_map(s), ("spec", "sources", i)) for i, s in enumerate(spec["sources"])]
    elif isinstance(spec.get("source"), dict):
        sources = [(spec["source"], ("spec", "source"))]
    else:
        run.result.findings.append(input_finding(
            RULE_ARGOCD, f"{label} has no spec.source or spec.sources", loc.path, loc.line))
        return []
    refs = {_str(s.get("ref")): s for s, _ in sources if _str(s.get("ref"))}
    namespace = _str(dest.get("namespace"))
    out: list[Resource] = []
    skipped = False
    for src, at in sources:
        if _str(src.get("ref")) and not src.get("path") and not src.get("chart"):
            repo_url = _str(src.get("repoURL"))
            if not run.local(repo_url):
                run.result.not_checked(
                    KIND, f"{label} source ref {src.get('ref')}", loc.path,
                    f"values from {repo_url or 'no repoURL'}, which is not this repository",
                    _where(app, *at, "repoURL").line)
            continue  # a ref source only provides files to the others
        objects = _source(app, src, at, refs, namespace, run)
        if objects is None:
            skipped = True
            continue
        out.extend(objects)
    out = [_in_namespace(r, namespace) for r in out]
    out = [r if r.cluster == run.cluster else replace(r, cluster=run.cluster) for r in out]
    if out or not skipped:
        run.result.coverage.append(Coverage("rendered", KIND, label, loc.path, loc.line, "",
                                            len(out)))
    for r in out:
        if r.location.path and not r.location.path.startswith(".."):
            run.result.files.add(r.location.path)
    return out


def _in_namespace(res: Resource, namespace: str) -> Resource:
    if not namespace or res.namespace or res.kind in CLUSTER_SCOPED:
        return res
    body = copy.deepcopy(dict(res.body))
    meta = body.setdefault("metadata", {})
    if not isinstance(meta, dict):
        return res
    meta["namespace"] = namespace
    return replace(res, body=body, namespace=namespace)


def _source(app: Resource, src: Mapping[str, Any], at: FieldPath, refs: Mapping[str, Any],
            namespace: str, run: _Run) -> list[Resource] | None:
    """The objects of one source; None when it was not checked (already recorded)."""
    label = _label(app)
    loc = app.location
    repo_url = _str(src.get("repoURL"))
    if src.get("chart"):
        return _remote_chart(app, src, at, refs, namespace, run)
    if not run.local(repo_url):
        run.result.not_checked(
            KIND, label, loc.path, f"its source {repo_url or '(no repoURL)'} is not this "
            "repository (add it to argocd.repoURLs if it is)", _where(app, *at, "repoURL").line)
        return None
    raw = _str(src.get("path"))
    path_loc = _where(app, *at, "path")
    folder = Path(os.path.normpath(run.root / (raw.strip().lstrip("/") or ".")))
    if not workspace.resolves_inside(folder, run.root):
        run.result.findings.append(input_finding(
            RULE_MISSING_PATH, f"{label}: source path {raw!r} leaves the repository",
            path_loc.path, path_loc.line))
        return []
    if not folder.is_dir():
        run.result.findings.append(input_finding(
            RULE_MISSING_PATH, f"{label}: source path {raw!r} does not exist in the repository",
            path_loc.path, path_loc.line))
        return []
    explicit = [k for k in ("helm", "kustomize", "directory", "plugin") if k in src
                and src[k] is not None]
    if len(explicit) > 1:
        run.result.findings.append(input_finding(
            RULE_ARGOCD, f"{label}: more than one source type is set ({', '.join(explicit)}); "
            "Argo CD refuses such a source", _where(app, *at).path, _where(app, *at).line))
        return []
    kind = explicit[0] if explicit else (
        "helm" if (folder / "Chart.yaml").is_file() else
        "kustomize" if kustomize.kustomization_file(folder) is not None else "directory")
    if kind == "plugin":
        run.result.not_checked(KIND, label, loc.path, "config management plugins are not run",
                               _where(app, *at, "plugin").line)
        return None
    if kind == "directory":
        return _directory(app, _map(src.get("directory")), at, folder, run)
    if kind == "kustomize":
        return _kustomize(app, _map(src.get("kustomize")), at, folder, run)
    return _helm(app, _map(src.get("helm")), at, folder, refs, namespace, run)


def _directory(app: Resource, opts: Mapping[str, Any], at: FieldPath, folder: Path,
               run: _Run) -> list[Resource] | None:
    label = _label(app)
    loc = app.location
    jsonnet = _map(opts.get("jsonnet"))
    if any(jsonnet.get(k) for k in ("extVars", "tlas", "libs")):
        run.result.not_checked(KIND, label, loc.path, "Jsonnet is not evaluated",
                               _where(app, *at, "directory", "jsonnet").line)
        return None
    include = glob_regex(_str(opts.get("include"))) if _str(opts.get("include")) else None
    exclude = glob_regex(_str(opts.get("exclude"))) if _str(opts.get("exclude")) else None
    recurse = opts.get("recurse") is True
    out: list[Resource] = []
    jsonnet_files: list[str] = []
    for file in _folder_files(folder, recurse):
        rel_to_source = file.relative_to(folder).as_posix()
        if exclude is not None and exclude.match(rel_to_source):
            continue
        if include is not None and not include.match(rel_to_source):
            continue
        if file.suffix in JSONNET_SUFFIXES:
            if file.suffix == ".jsonnet":
                jsonnet_files.append(relpath(file, run.root))
            continue
        if file.suffix not in MANIFEST_SUFFIXES:
            continue
        part = load_file(file, run.root)  # a link out of the repository is its own finding
        run.result.findings.extend(part.findings)
        run.result.files |= part.files
        out.extend(part.resources)
    for rel in jsonnet_files:
        run.result.not_checked(KIND, f"{label} {rel}", loc.path,
                               "Jsonnet is not evaluated", _where(app, *at, "path").line)
    return out


def _folder_files(folder: Path, recurse: bool) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not
                             d.startswith(".")) if recurse else []
        for name in sorted(filenames):
            yield Path(dirpath, name)


def _image_entry(text: str) -> dict[str, str]:
    """A kustomize ``images`` entry from Argo CD's ``name=new:tag`` / ``name:tag`` syntax."""
    name, sep, new = text.partition("=")
    ref = new if sep else name

    def split(value: str) -> tuple[str, str, str]:
        digest = ""
        if "@" in value:
            value, _, digest = value.partition("@")
        tag = ""
        slash = value.rfind("/")
        colon = value.rfind(":")
        if colon > slash:
            value, tag = value[:colon], value[colon + 1:]
        return value, tag, digest

    new_name, tag, digest = split(ref)
    if not sep:
        name = new_name
    entry = {"name": name}
    if sep and new_name and new_name != name:
        entry["newName"] = new_name
    if tag:
        entry["newTag"] = tag
    if digest:
        entry["digest"] = digest
    return entry


def overlay(opts: Mapping[str, Any], folder: Path, wrapper: Path, root: Path,
            ) -> tuple[dict[str, Any], list[str]]:
    """The kustomization Argo CD's options make of ``folder``, written next to ``wrapper``.

    Returns it and the problems (paths leaving the repository) that were left out.
    """
    problems: list[str] = []
    data: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(folder.resolve(), wrapper)],
    }
    for key in ("namePrefix", "nameSuffix", "namespace"):
        if _str(opts.get(key)):
            data[key] = opts[key]
    images = [_image_entry(i) for i in _list(opts.get("images")) if isinstance(i, str)]
    if images:
        data["images"] = images
    replicas = []
    for entry in _list(opts.get("replicas")):
        entry = _map(entry)
        try:
            replicas.append({"name": str(entry["name"]), "count": int(entry["count"])})
        except (KeyError, TypeError, ValueError):
            problems.append(f"replicas entry {entry!r} has no name and integer count")
    if replicas:
        data["replicas"] = replicas
    labels = {str(k): str(v) for k, v in _map(opts.get("commonLabels")).items()}
    if labels:
        if opts.get("labelWithoutSelector") is True:
            data["labels"] = [{"pairs": labels, "includeSelectors": False,
                               "includeTemplates": opts.get("labelIncludeTemplates") is True}]
        else:
            data["commonLabels"] = labels
    annotations = {str(k): str(v) for k, v in _map(opts.get("commonAnnotations")).items()}
    if annotations:
        data["commonAnnotations"] = annotations
    patches = []
    for entry in _list(opts.get("patches")):
        entry = dict(_map(entry))
        if _str(entry.get("path")):
            file = Path(os.path.normpath(folder / entry.pop("path")))
            if not workspace.resolves_inside(file, root) or not file.is_file():
                problems.append(f"patch file {relpath(file, root)} is not in the repository")
                continue
            entry["patch"] = file.read_text(encoding="utf-8")
        if entry.get("patch"):
            patches.append(entry)
    if patches:
        data["patches"] = patches
    components = []
    for comp in _list(opts.get("components")):
        target = Path(os.path.normpath(folder / str(comp)))
        if not workspace.resolves_inside(target, root):
            problems.append(f"component {comp} leaves the repository")
            continue
        if not target.exists():
            if opts.get("ignoreMissingComponents") is True:
                continue
            problems.append(f"component {comp} does not exist")
            continue
        components.append(os.path.relpath(target.resolve(), wrapper))
    if components:
        data["components"] = components
    return data, problems


def _kustomize(app: Resource, opts: Mapping[str, Any], at: FieldPath, folder: Path,
               run: _Run) -> list[Resource]:
    label = _label(app)
    where = _where(app, *at, "kustomize") if opts else _where(app, *at, "path")
    problems: list[str] = []

    def prepare(wrapper: Path) -> Mapping[Path, Path]:
        data, bad = overlay(opts, folder, wrapper, run.root)
        problems.extend(bad)
        if bad:  # nothing is built from an overlay Argo CD would refuse
            data = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        data["buildMetadata"] = list(kustomize.BUILD_METADATA)
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(data, sort_keys=True),
                                                    encoding="utf-8")
        return {}

    components = [Path(os.path.normpath(folder / str(c))) for c in _list(opts.get("components"))]
    part = kustomize.render_prepared(
        prepare, run.root, what=f"{label} (path {relpath(folder, run.root)})",
        declared=where.path, fallback_dir=folder,
        graph=[folder, *(c for c in components
                         if c.is_dir() and workspace.resolves_inside(c, run.root))],
        remote_hosts=run.remote_hosts, line=where.line)
    for problem in problems:
        run.result.findings.append(input_finding(
            RULE_ARGOCD, f"{label}: {problem}", where.path, where.line))
    if problems:
        return []
    run.result.findings.extend(part.findings)
    run.result.coverage.extend(c for c in part.coverage if c.state == "not-checked")
    return [r if not r.location.path.startswith("..") else replace(r, location=where, marks={})
            for r in part.resources]


def _helm(app: Resource, opts: Mapping[str, Any], at: FieldPath, folder: Path,
          refs: Mapping[str, Any], namespace: str, run: _Run,
          fetched: Path | None = None) -> list[Resource] | None:
    """Render a chart of this repository (``folder``) or a fetched one (``fetched``)."""
    label = _label(app)
    loc = app.location
    where = _where(app, *at, "helm") if opts else _where(app, *at, "path")
    chart = fetched or folder
    layers: list[helm_load.ValuesLayer] = []
    if fetched is None and (folder / "values.yaml").is_file():
        defaults = helm_load.file_layer(folder / "values.yaml", run.root)
        if isinstance(defaults, helm_load.ValuesLayer):
            layers.append(defaults)
    for i, name in enumerate(_list(opts.get("valueFiles"))):
        name_loc = _where(app, *at, "helm", "valueFiles", i)
        file = _value_file(str(name), folder, refs, run, remote=fetched is not None)
        if isinstance(file, str):
            if opts.get("ignoreMissingValueFiles") is True and file.endswith("does not exist"):
                continue
            if "not this repository" in file or "not fetched" in file or "not read" in file:
                run.result.not_checked(KIND, f"{label} values {name}", loc.path, file,
                                       name_loc.line)
                return None
            run.result.findings.append(input_finding(
                RULE_ARGOCD, f"{label}: values file {name}: {file}", name_loc.path,
                name_loc.line))
            return []
        layer = helm_load.file_layer(file, run.root)
        if isinstance(layer, str):
            run.result.findings.append(input_finding(
                RULE_ARGOCD, f"{label}: values file {name} cannot be read: {layer}",
                name_loc.path, name_loc.line))
            return []
        layers.append(layer)
    inline = opts.get("values")
    vloc = _where(app, *at, "helm", "values")
    if isinstance(inline, str) and inline.strip():
        try:
            data = yaml.safe_load(inline)
        except yaml.YAMLError as err:
            run.result.findings.append(input_finding(
                RULE_ARGOCD, f"{label}: helm.values is not YAML: {err}", vloc.path, vloc.line))
            return []
        layers.append(helm_load.values_layer(_map(data), _fixed(vloc), "helm.values"))
    elif isinstance(inline, dict):
        layers.append(helm_load.values_layer(
            inline, lambda p: app.locate((*at, "helm", "values", *p)), "helm.values"))
    if isinstance(opts.get("valuesObject"), dict):
        layers.append(helm_load.values_layer(
            opts["valuesObject"], lambda p: app.locate((*at, "helm", "valuesObject", *p)),
            "helm.valuesObject"))
    try:
        for i, param in enumerate(_list(opts.get("parameters"))):
            param = _map(param)
            if not _str(param.get("name")):
                continue
            ploc = _where(app, *at, "helm", "parameters", i)
            value = "" if param.get("value") is None else param["value"]
            layers.append(helm_load.values_layer(
                _set_values(f"{param['name']}={value}", param.get("forceString") is True),
                _fixed(ploc), "helm.parameters"))
        for i, param in enumerate(_list(opts.get("fileParameters"))):
            param = _map(param)
            ploc = _where(app, *at, "helm", "fileParameters", i)
            target = Path(os.path.normpath(folder / _str(param.get("path"))))
            if not workspace.resolves_inside(target, run.root) or not target.is_file():
                run.result.findings.append(input_finding(
                    RULE_ARGOCD, f"{label}: fileParameters path {param.get('path')!r} is not "
                    "a file in the repository", ploc.path, ploc.line))
                return []
            from_file: dict[str, Any] = {}
            _assign(from_file, str(param.get("name")), target.read_text(encoding="utf-8"))
            layers.append(helm_load.values_layer(from_file, _fixed(ploc),
                                                 "helm.fileParameters"))
    except Exception as err:  # helm_python.HelmValuesError: Helm's own message
        run.result.findings.append(input_finding(
            RULE_ARGOCD, f"{label}: helm parameters: {err}", where.path, where.line))
        return []
    missing: list[str] = []
    if fetched is None:  # the Helm loader's rule: enabled dependencies charts/ does not hold
        merged: dict[str, Any] = {}
        for layer in layers:
            merged = helm_load.merge_values(merged, layer.data)
        missing = helm_load._missing_dependencies(folder, merged)
        for name in missing:
            run.result.not_checked(
                KIND, f"{label} Helm dependency {name}", loc.path,
                f"chart dependency {name} is declared in {relpath(folder, run.root)}/"
                "Chart.yaml but not vendored in its charts/ folder, so its objects were not "
                "rendered (Argo CD would fetch it)", where.line)
    release = _str(opts.get("releaseName")) or app.name
    part = helm_load.render_chart(
        chart, run.root, release=release, namespace=namespace, layers=layers,
        declared=where, crds=opts.get("skipCrds") is not True,
        what=f"{label} Helm chart {relpath(folder, run.root) if fetched is None else chart.name}")
    run.result.findings.extend(f for f in part.findings if not (
        missing and f.rule_id == helm_load.RULE_HELM and "missing in charts/" in f.message))
    run.result.coverage.extend(part.coverage)
    run.result.files |= part.files
    if fetched is None:
        run.charts.add(relpath(folder, run.root))
    return part.resources


def _fixed(location: SourceLocation) -> helm_load.LocateFn:
    """A values-layer lookup that puts every field at one line (a parameter, a text block)."""
    def locate(_path: FieldPath) -> SourceLocation | None:
        return location
    return locate


def _remote_chart(app: Resource, src: Mapping[str, Any], at: FieldPath,
                  refs: Mapping[str, Any], namespace: str, run: _Run) -> list[Resource] | None:
    """A ``chart:`` source: fetched from an allowed host (``helm.allowedHosts``) and rendered."""
    label = _label(app)
    chart = _str(src.get("chart"))
    repo_url = _str(src.get("repoURL"))
    version = _str(src.get("targetRevision"))
    version = "" if version in ("*", "HEAD") else version
    where = _where(app, *at, "chart")
    fetcher = helmfetch.Fetcher(run.helm.allowed_hosts, run.helm.cache_dir)
    try:
        if repo_url.startswith(("http://", "https://")):
            path, chosen = fetcher.http_chart(repo_url, chart, version)
        else:  # Argo CD names OCI chart repositories with or without oci://
            base = repo_url.removeprefix("oci://").rstrip("/")
            path, chosen = fetcher.oci_chart(f"oci://{base}/{chart}", version)
    except helmfetch.FetchRefused as err:
        run.result.not_checked(KIND, f"{label} chart {chart}", app.location.path,
                               f"Helm chart {chart} from {repo_url or 'no repoURL'} was not "
                               f"fetched: {err}", where.line)
        return None
    run.result.coverage.append(Coverage("followed", KIND, f"{label} chart {chart}",
                                        app.location.path, where.line,
                                        f"chart {chart} {chosen} from {repo_url}"))
    return _helm(app, _map(src.get("helm")), at, run.root, refs, namespace, run, fetched=path)


def _assign(values: dict[str, Any], dotted: str, text: str) -> None:
    node = values
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = text


def _value_file(name: str, folder: Path, refs: Mapping[str, Any], run: _Run,
                remote: bool = False) -> Path | str:
    """The values file a ``valueFiles`` entry names, or why there is none."""
    if "://" in name:
        return "remote values files are not fetched"
    if remote and not name.startswith("$"):
        return "values files inside a fetched chart are not read"
    if name.startswith("$"):
        ref, _, rest = name[1:].partition("/")
        source = refs.get(ref)
        if source is None:
            return f"no source has ref {ref!r}"
        if not run.local(_str(source.get("repoURL"))):
            return f"ref {ref} reads {source.get('repoURL')}, which is not this repository"
        file = Path(os.path.normpath(run.root / rest))
    else:
        file = Path(os.path.normpath(folder / name))
    if not workspace.resolves_inside(file, run.root):
        return "leaves the repository"
    if not file.is_file():
        return "does not exist"
    return file
