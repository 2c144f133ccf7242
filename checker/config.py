"""Repository configuration: ``.gitops-checker.yaml`` and Security Tower cluster files -> Clusters.

Three sources, in this order of precedence:

1. ``.gitops-checker.yaml`` (or ``--config FILE``), validated with the shipped JSON Schema
   ``checker/schemas/gitops-checker.schema.json``;
2. Syncier Security Tower cluster files ``.securitytower/*.yaml`` (``securitytower.io/v1alpha1``
   ``Cluster``), read as they are: ``metadata.name`` names a cluster, ``spec.policies.path`` is
   its folder of Gatekeeper policies; ``Application`` files next to them give stages (a folder
   deployed into a cluster and namespace, an environment, ``previousStage`` the promotion
   order);
3. nothing: one unnamed cluster made of the paths given on the command line.

A cluster in the config file with the same name as a Security Tower cluster is one cluster: the
config file adds paths, environment and packs; the Security Tower file adds its policies folder
unless the config names policies itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema

from checker.admit.settings import AdmissionSettings
from checker.errors import ConfigError
from checker.load import workspace, yamlfile
from checker.load.argocd import ArgoSettings, settings_from_config
from checker.load.flux import FluxSync, follow_all, mapping_of
from checker.load.helm import HelmSettings
from checker.load.objects import (
    RULE_MISSING_PATH,
    RULE_NOT_CHECKED,
    RULE_POLICY_SELECTION,
    input_finding,
)
from checker.load.yamlfile import Document, YamlProblem, decode, parse_documents
from checker.model import Coverage, FieldPath, Finding, Severity
from checker.parallel import DEFAULT_LIMITS, Limits

CONFIG_NAME = ".gitops-checker.yaml"
CONFIG_NAMES = (CONFIG_NAME, ".gitops-checker.yml")
SECURITY_TOWER_DIR = ".securitytower"
SECURITY_TOWER_API = "securitytower.io/v1alpha1"
DEFAULT_ACCEPTANCE_PATHS = (".gitops-checker/acceptances",)
DEFAULT_WARN_DAYS = 14
NO_PACKS = "none"


@dataclass(frozen=True)
class Stage:
    """One stage of a Security Tower ``Application``: a folder deployed into a namespace.

    ``name`` is the stage (it becomes an environment), ``previous`` its ``previousStage``
    (the promotion order), ``source`` where it is declared (``file:line``).
    """

    application: str
    name: str
    cluster: str
    path: Path
    namespace: str = ""
    previous: str = ""
    source: str = ""
    line: int = 1


@dataclass(frozen=True)
class Cluster:
    """One cluster (or stage) of the repository and what applies to it."""

    name: str                      # "" for the unnamed default cluster
    environment: str               # stage, e.g. "staging", "production", "" if unknown
    paths: tuple[Path, ...]        # desired-state paths, after following Flux Kustomizations
    packs: tuple[str, ...]         # built-in packs for this cluster (empty = defaults)
    policies: tuple[Path, ...]     # repository Gatekeeper policy folders for this cluster
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    syncs: tuple[FluxSync, ...] = ()         # the followed Flux Kustomizations among ``paths``
    problems: tuple[Finding, ...] = ()       # broken Flux spec.path references, as findings
    coverage: tuple[Coverage, ...] = ()      # Flux syncs followed, sources not checked
    source: str = ""               # where the cluster was declared ("file:line")
    override_sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    argocd: ArgoSettings | None = field(default=None, compare=False)  # argocd: in the config
    stages: tuple[Stage, ...] = ()           # Security Tower Application stages deployed here
    staged_elsewhere: tuple[Path, ...] = ()  # folders stages deploy to other clusters
    # excludedNamespaces for every built-in policy of the cluster (None: each pack's own
    # list), and where that was set ("file:line")
    excluded_namespaces: tuple[str, ...] | None = None
    excluded_source: str = field(default="", compare=False)
    snapshot: Path | None = None   # a live snapshot file in the repository (the what-if's)

    @property
    def declared_paths(self) -> tuple[Path, ...]:
        """The paths as declared, without the folders reached through Flux."""
        synced = {s.path for s in self.syncs}
        return tuple(p for p in self.paths if p not in synced)


@dataclass(frozen=True)
class AcceptanceSettings:
    """Where acceptance files live and how acceptances are treated."""

    paths: tuple[Path, ...] = ()
    inline: bool = True            # False: ``acceptances: files-only``
    warn_days: int = DEFAULT_WARN_DAYS


@dataclass(frozen=True)
class Config:
    """The repository configuration, resolved to clusters."""

    clusters: tuple[Cluster, ...]
    source: str                    # file the config came from, "" when none
    acceptances: AcceptanceSettings = AcceptanceSettings()
    drift_ignore: tuple[Mapping[str, Any], ...] = ()  # drift.ignore entries, as written
    drift_ignore_lines: tuple[int, ...] = ()  # the line of each drift.ignore entry
    # drift.fieldManagers (None: not set) and drift.fieldTypes, read with the rest of the file
    drift_field_managers: tuple[str, ...] | None = None
    drift_field_types: Mapping[Any, Mapping[tuple[str, ...], str]] = field(default_factory=dict)
    group_by: str = ""             # "cluster", "pack" or "" (decide from the clusters)
    security_tower: tuple[str, ...] = ()  # Security Tower cluster files that were read
    allowed_registries: tuple[str, ...] = ()  # images.allowedRegistries
    require_signed: bool = False              # guardrails.requireSignedCommits
    require_codeowners: bool = False          # guardrails.requireCodeowners
    helm: HelmSettings = field(default_factory=HelmSettings)  # helm.allowedHosts
    not_checked: Severity = Severity.WARNING  # coverage.notChecked
    remote_hosts: tuple[str, ...] = ()        # kustomize.remoteHosts
    limits: Limits = DEFAULT_LIMITS           # limits.evaluationSeconds / limits.memoryMiB
    # gatekeeper.templateEngine: a template with CEL and Rego runs its CEL (Gatekeeper's
    # default, K8sNativeValidation) or, when False (Rego), its Rego
    cel_templates: bool = True
    # admission.mutation / expansion / expansionTemplates (checker.admit.stage)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)

    @property
    def named(self) -> bool:
        """Whether clusters were configured (not just the unnamed default)."""
        return any(c.name for c in self.clusters)


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of ``.gitops-checker.yaml``."""
    text = importlib_resources.files("checker").joinpath(
        "schemas/gitops-checker.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _read_yaml(path: Path, label: str, root: Path, raw: bytes | None = None) -> list[Document]:
    if raw is None:
        try:
            raw = workspace.read_bytes(path, root, yamlfile.MAX_FILE_BYTES)
        except workspace.Refused as refused:
            raise ConfigError(f"{label}: cannot read: {refused.message}") from None
        except OSError as err:
            raise ConfigError(f"{label}: cannot read: {err.strerror}") from err
    elif len(raw) > yamlfile.MAX_FILE_BYTES:
        raise ConfigError(f"{label}: cannot read: larger than {yamlfile.MAX_FILE_BYTES} bytes")
    try:
        text = decode(raw)
    except YamlProblem as problem:
        raise ConfigError(f"{label}:{problem.line}: {problem.message}") from None
    docs: list[Document] = []
    for item in parse_documents(text):
        if isinstance(item, YamlProblem):
            raise ConfigError(f"{label}:{item.line}: {item.message}")
        for _kind, message, line, _column in item.notes:  # a config says one thing only
            raise ConfigError(f"{label}:{line}: {message.split(':')[0]}")
        docs.append(item)
    return docs


def _line(doc: Document, path: Sequence[Any]) -> int:
    """The line of the deepest declared prefix of ``path``."""
    key: FieldPath = tuple(path)
    for end in range(len(key), -1, -1):
        span = doc.spans.get(key[:end])
        if span is not None:
            return span[0]
    return doc.line


def _validate(data: Any, doc: Document, label: str, the_schema: Mapping[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(the_schema)
    errors = sorted(validator.iter_errors(data),
                    key=lambda e: (_line(doc, list(e.absolute_path)), str(e.message)))
    if errors:
        err = errors[0]
        best = jsonschema.exceptions.best_match([err]) or err
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{label}:{_line(doc, list(err.absolute_path))}: invalid config at "
                          f"{where}: {best.message}")


def _repo_path(text: str, root: Path, label: str, line: int) -> Path:
    """A path from a config file: relative to the repository root ('/x' means root/x too)."""
    rel = text.strip().lstrip("/") or "."
    path = root / rel
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ConfigError(f"{label}:{line}: path {text!r} leaves the repository") from None
    return path


@dataclass
class _Draft:
    name: str
    environment: str = ""
    paths: list[Path] = field(default_factory=list)
    packs: list[str] | None = None
    policies: list[Path] | None = None
    overrides: dict[str, dict[str, Any]] | None = None
    excluded: list[str] | None = None
    excluded_source: str = ""
    source: str = ""
    override_sources: dict[str, str] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    stage_problems: list[Finding] = field(default_factory=list)
    stages_only: bool = False      # declared only by Security Tower Application stages
    snapshot: Path | None = None


def _st_application(doc: Document, label: str, root: Path,
                    ) -> tuple[list[Stage], list[Finding]]:
    """The stages of a Security Tower ``Application`` (problems are findings, never exit 2)."""
    data = doc.data
    meta = mapping_of(data.get("metadata"))
    app = str(meta.get("name") or "?")
    spec = mapping_of(data.get("spec"))
    stages: list[Stage] = []
    problems: list[Finding] = []
    raw = spec.get("stages")
    entries = raw if isinstance(raw, list) else []
    if not entries:
        problems.append(input_finding(
            RULE_NOT_CHECKED, f"Security Tower Application {app} has no spec.stages, so nothing "
            "of it was checked", label, _line(doc, ["spec"]), severity=Severity.WARNING))
    names: set[str] = set()
    for index, entry in enumerate(entries):
        at = ["spec", "stages", index]
        line = _line(doc, at)
        entry = mapping_of(entry)
        name = entry.get("name")
        cluster = mapping_of(entry.get("cluster")).get("name")
        resources = mapping_of(entry.get("resources")).get("path")
        if not isinstance(name, str) or not name or not isinstance(cluster, str) or not cluster:
            problems.append(input_finding(
                RULE_NOT_CHECKED, f"Security Tower Application {app}: stage {index + 1} needs "
                "a name and a cluster.name; it was not checked", label, line,
                severity=Severity.WARNING))
            continue
        if not isinstance(resources, str) or not resources.strip():
            problems.append(input_finding(
                RULE_NOT_CHECKED, f"Security Tower Application {app}: stage {name} has no "
                "resources.path; it was not checked", label, line, severity=Severity.WARNING))
            continue
        path_line = _line(doc, [*at, "resources", "path"])
        target = root / (resources.strip().lstrip("/") or ".")
        try:
            target.resolve().relative_to(root.resolve())
        except ValueError:
            problems.append(input_finding(
                RULE_MISSING_PATH, f"Security Tower Application {app}: stage {name} path "
                f"{resources!r} leaves the repository", label, path_line))
            continue
        if not target.exists():
            problems.append(input_finding(
                RULE_MISSING_PATH, f"Security Tower Application {app}: stage {name} path "
                f"{resources!r} does not exist in the repository", label, path_line))
            continue
        namespace = entry.get("targetNamespace")
        previous = entry.get("previousStage")
        names.add(name)
        stages.append(Stage(
            application=app, name=name, cluster=cluster, path=target,
            namespace=namespace if isinstance(namespace, str) else "",
            previous=previous if isinstance(previous, str) else "",
            source=f"{label}:{line}", line=line))
    for stage in stages:
        if stage.previous and stage.previous not in names:
            problems.append(input_finding(
                RULE_NOT_CHECKED, f"Security Tower Application {app}: previousStage "
                f"{stage.previous!r} of stage {stage.name} is not one of its stages, so the "
                "promotion order ignores it", label, stage.line, severity=Severity.WARNING))
    return stages, problems


def _security_tower(root: Path, contents: Mapping[str, bytes] | None = None,
                    ) -> tuple[list[_Draft], list[str], tuple[list[Stage], list[Finding]]]:
    folder = root / SECURITY_TOWER_DIR
    if contents is None and not folder.is_dir():
        return [], [], ([], [])
    drafts: list[_Draft] = []
    files: list[str] = []
    stages: list[Stage] = []
    problems: list[Finding] = []
    names = (sorted(contents) if contents is not None else
             sorted(f.name for f in [*folder.glob("*.yaml"), *folder.glob("*.yml")]))
    for file_name in names:
        file = folder / file_name
        label = f"{SECURITY_TOWER_DIR}/{file_name}"
        raw = contents[file_name] if contents is not None else None
        for doc in _read_yaml(file, label, root, raw):
            data = doc.data
            if not isinstance(data, dict):
                raise ConfigError(f"{label}:{doc.line}: expected a Security Tower Cluster object")
            if data.get("apiVersion") == SECURITY_TOWER_API and data.get("kind") == "Application":
                found, bad = _st_application(doc, label, root)
                stages += found
                problems += bad
                continue
            if data.get("apiVersion") != SECURITY_TOWER_API or data.get("kind") != "Cluster":
                raise ConfigError(
                    f"{label}:{doc.line}: expected apiVersion {SECURITY_TOWER_API} and kind "
                    f"Cluster or Application, found {data.get('apiVersion')!r} "
                    f"{data.get('kind')!r}")
            meta = data.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{label}:{_line(doc, ['metadata'])}: metadata.name is "
                                  "required")
            spec = mapping_of(data.get("spec"))
            policies = spec.get("policies")
            draft = _Draft(name=name, source=f"{label}:{doc.line}")
            if policies is not None:
                if not isinstance(policies, dict):
                    raise ConfigError(f"{label}:{_line(doc, ['spec', 'policies'])}: "
                                      "spec.policies must be a mapping")
                repo = policies.get("repository")
                if repo:
                    raise ConfigError(
                        f"{label}:{_line(doc, ['spec', 'policies', 'repository'])}: policies "
                        f"in another repository ({repo}) are not read; check that repository "
                        "out and pass its folder with --policies")
                ppath = policies.get("path")
                if ppath is not None:
                    line = _line(doc, ["spec", "policies", "path"])
                    if not isinstance(ppath, str) or not ppath.strip():
                        raise ConfigError(f"{label}:{line}: spec.policies.path must be a "
                                          "non-empty string")
                    folder_path = _repo_path(ppath, root, label, line)
                    if not folder_path.is_dir():
                        raise ConfigError(f"{label}:{line}: policies folder {ppath!r} does not "
                                          "exist")
                    draft.policies = [folder_path]
                    draft.packs = [NO_PACKS]  # only the policies Security Tower enforced
            if any(d.name == name for d in drafts):
                raise ConfigError(f"{label}:{doc.line}: cluster {name!r} is declared twice")
            drafts.append(draft)
        files.append(label)
    return drafts, files, (stages, problems)


def _selection(data: Mapping[str, Any], root: Path, label: str, doc: Document,
               at: list[Any]) -> tuple[list[str] | None, list[Path] | None,
                                       dict[str, dict[str, Any]] | None]:
    packs = list(data["packs"]) if "packs" in data else None
    policies = None
    if "policies" in data:
        policies = []
        for index, text in enumerate(data["policies"]):
            line = _line(doc, [*at, "policies", index])
            folder = _repo_path(text, root, label, line)
            if not folder.is_dir():
                raise ConfigError(f"{label}:{line}: policies folder {text!r} does not exist")
            policies.append(folder)
    overrides = ({k: dict(v) for k, v in data["overrides"].items()}
                 if "overrides" in data else None)
    return packs, policies, overrides


def _acceptance_settings(value: Any, root: Path, label: str, doc: Document) -> AcceptanceSettings:
    if value is None:
        return AcceptanceSettings(paths=tuple(root / p for p in DEFAULT_ACCEPTANCE_PATHS))
    if isinstance(value, str):
        return AcceptanceSettings(paths=tuple(root / p for p in DEFAULT_ACCEPTANCE_PATHS),
                                  inline=value != "files-only")
    paths = []
    for index, text in enumerate(value.get("paths", [])):
        line = _line(doc, ["acceptances", "paths", index])
        path = _repo_path(text, root, label, line)
        if not path.exists():
            raise ConfigError(f"{label}:{line}: acceptance path {text!r} does not exist")
        paths.append(path)
    return AcceptanceSettings(
        paths=tuple(paths) or tuple(root / p for p in DEFAULT_ACCEPTANCE_PATHS),
        inline=value.get("mode", "all") != "files-only",
        warn_days=int(value.get("warnDays", DEFAULT_WARN_DAYS)),
    )


def _finish(draft: _Draft, defaults: tuple[list[str] | None, list[Path] | None,
                                           dict[str, dict[str, Any]] | None],
            default_paths: Sequence[Path], root: Path,
            default_excluded: tuple[list[str] | None, str] = (None, "")) -> Cluster:
    d_packs, d_policies, d_overrides = defaults
    excluded, excluded_source = ((draft.excluded, draft.excluded_source)
                                 if draft.excluded is not None else default_excluded)
    packs = draft.packs if draft.packs is not None else (d_packs or [])
    policies = draft.policies if draft.policies is not None else (d_policies or [])
    overrides = dict(d_overrides or {})
    for pid, override in (draft.overrides or {}).items():
        overrides[pid] = {**overrides.get(pid, {}), **override}
    declared = [] if draft.stages_only else (list(draft.paths) or list(default_paths) or [root])
    followed = follow_all(declared, root)
    syncs, problems = followed.syncs, [*followed.findings, *draft.stage_problems]
    return Cluster(
        name=draft.name, environment=draft.environment,
        paths=tuple(dict.fromkeys([*declared, *(s.path for s in syncs if not s.artifact)])),
        packs=tuple(packs), policies=tuple(dict.fromkeys(policies)),
        overrides={k: overrides[k] for k in sorted(overrides)},
        syncs=tuple(syncs), problems=tuple(problems), coverage=tuple(followed.coverage),
        source=draft.source, override_sources=draft.override_sources, stages=tuple(draft.stages),
        excluded_namespaces=tuple(excluded) if excluded is not None else None,
        excluded_source=excluded_source if excluded is not None else "",
        snapshot=draft.snapshot,
    )


def _place_stages(drafts: list[_Draft], stages: Sequence[Stage],
                  problems: Sequence[Finding]) -> None:
    """Give each Security Tower stage to the cluster it names.

    A cluster no file here declares (it lives in a cluster repository) becomes a cluster of
    its own made of the stages that name it. Problems go to the first cluster, once.
    """
    if not stages and not problems:
        return
    drafts[0].stage_problems.extend(problems)
    for stage in stages:
        draft = next((d for d in drafts if d.name == stage.cluster), None)
        if draft is None:
            draft = _Draft(name=stage.cluster, source=stage.source, stages_only=True)
            drafts.append(draft)
        draft.stages.append(stage)


def stage_order(clusters: Sequence[Cluster]) -> dict[str, tuple[str, ...]]:
    """Every stage name -> the stages before it in the promotion order (``previousStage``)."""
    previous: dict[str, set[str]] = {}
    for cluster in clusters:
        for stage in cluster.stages:
            edges = previous.setdefault(stage.name, set())
            if stage.previous:
                edges.add(stage.previous)
    out: dict[str, tuple[str, ...]] = {}
    for name in sorted(previous):
        seen: list[str] = []
        todo = sorted(previous[name])
        while todo:
            current = todo.pop(0)
            if current in seen or current == name:
                continue
            seen.append(current)
            todo.extend(sorted(previous.get(current, ())))
        out[name] = tuple(seen)
    return out


def selection_findings(cluster: Cluster, cli_packs: Sequence[str], policy_count: int,
                       config_source: str) -> list[Finding]:
    """Findings when the repository itself switched the built-in packs off for ``cluster``.

    The repository (``.gitops-checker.yaml`` ``packs: [none]``, or a Security Tower file, whose
    clusters use only their own policies folder) may come from the pull request under check,
    so this is never silent: a notice when the config file switched the packs off and the
    repository's own policies run instead (Security Tower clusters run only their folder's
    policies by design: no notice for them). A selection that leaves no policy at all (a
    Security Tower file pointing at an empty folder) is the pipeline's ``input.no-policies``
    error.
    ``--pack`` on the command line is the caller's choice and gives no finding.
    """
    if cli_packs or NO_PACKS not in cluster.packs:
        return []
    source = cluster.source or (f"{config_source}:1" if config_source else "")
    path, _, line = source.rpartition(":")
    if not path or not line.isdigit():
        path, line = source or CONFIG_NAME, "1"
    who = f"cluster {cluster.name!r}" if cluster.name else "the scan"
    if policy_count == 0:
        return []  # the pipeline's input.no-policies error says so (a Security Tower file
        #            pointing at an empty folder used to switch every pack off silently)
    if path.startswith(SECURITY_TOWER_DIR + "/"):
        return []  # Security Tower's own mode: the policies it enforces, and they are there
    return [input_finding(
        RULE_POLICY_SELECTION, f"{who}: the built-in packs are switched off by {source}; only "
        f"the repository's own {policy_count} policies were checked", path, int(line),
        severity=Severity.NOTE)]


def find_config(root: Path) -> Path | None:
    """The repository config file under ``root``, if there is one."""
    for name in CONFIG_NAMES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def load_config(root: Path, config_file: Path | None = None,
                default_paths: Sequence[Path] = (), content: bytes | None = None,
                security_tower: Mapping[str, bytes] | None = None) -> Config:
    """Read the repository configuration under ``root`` (or ``config_file``).

    ``content`` is the config file's text read elsewhere (the base ref's, from git), used in
    place of what ``config_file`` holds on disk; ``security_tower`` likewise holds the Security
    Tower files (name -> bytes) in place of those in ``.securitytower/``.

    ``default_paths`` (the command line's PATHS) are the desired state of clusters that name
    no paths themselves: the unnamed default cluster and Security Tower clusters; without them
    such clusters scan the whole repository. Raises ``ConfigError("<file>:<line>: ...")``.
    """
    st_drafts, st_files, (st_stages, st_problems) = _security_tower(root, security_tower)
    file = config_file if config_file is not None else find_config(root)
    if config_file is not None and content is None and not config_file.is_file():
        raise ConfigError(f"config file does not exist: {config_file}")
    drafts: list[_Draft] = list(st_drafts)
    defaults: tuple[list[str] | None, list[Path] | None, dict[str, dict[str, Any]] | None] = (
        None, None, None)
    acceptances = AcceptanceSettings(paths=tuple(root / p for p in DEFAULT_ACCEPTANCE_PATHS))
    drift_ignore: tuple[Mapping[str, Any], ...] = ()
    drift_ignore_lines: tuple[int, ...] = ()
    field_managers: tuple[str, ...] | None = None
    field_types: Mapping[Any, Mapping[tuple[str, ...], str]] = {}
    group_by = ""
    limits = DEFAULT_LIMITS
    cel_templates = True
    admission = AdmissionSettings()
    allowed_registries: tuple[str, ...] = ()
    require_signed = require_codeowners = False
    helm = HelmSettings()
    not_checked = Severity.WARNING
    remote_hosts: tuple[str, ...] = ()
    label = ""
    default_sources: dict[str, str] = {}
    default_excluded: tuple[list[str] | None, str] = (None, "")
    argocd_data: Mapping[str, Any] | None = None
    if file is not None:
        label = file.name if file.parent.resolve() == root.resolve() else str(file)
        docs = _read_yaml(file, label, root, content)
        if len(docs) > 1:
            raise ConfigError(f"{label}:{docs[1].line}: expected one YAML document")
        doc = docs[0] if docs else Document({}, {}, 1, 1)
        data = doc.data if doc.data is not None else {}
        _validate(data, doc, label, schema())
        if "defaults" in data:
            defaults = _selection(data["defaults"], root, label, doc, ["defaults"])
            default_sources = {pid: f"{label}:{_line(doc, ['defaults', 'overrides', pid])}"
                               for pid in defaults[2] or {}}
            if "excludedNamespaces" in data["defaults"]:
                default_excluded = (
                    [str(n) for n in data["defaults"]["excludedNamespaces"]],
                    f"{label}:{_line(doc, ['defaults', 'excludedNamespaces'])}")
        acceptances = _acceptance_settings(data.get("acceptances"), root, label, doc)
        drift_ignore = tuple(dict(r) for r in (data.get("drift") or {}).get("ignore", []))
        drift_ignore_lines = tuple(_line(doc, ["drift", "ignore", i])
                                   for i in range(len(drift_ignore)))
        from checker.drift.applied import field_managers_of
        from checker.drift.crdtypes import field_types_of

        field_managers = field_managers_of(doc, label)
        field_types = field_types_of(doc, label)
        group_by = str(data.get("groupBy", ""))
        engine = (data.get("gatekeeper") or {}).get("templateEngine", "K8sNativeValidation")
        cel_templates = engine == "K8sNativeValidation"
        admit = data.get("admission") or {}
        admission = AdmissionSettings(
            mutation=bool(admit.get("mutation", True)),
            expansion=bool(admit.get("expansion", True)),
            templates=tuple(_repo_path(p, root, label, _line(
                doc, ["admission", "expansionTemplates", i]))
                for i, p in enumerate(admit.get("expansionTemplates", []))))
        bounds = data.get("limits") or {}
        limits = Limits(seconds=float(bounds.get("evaluationSeconds", limits.seconds)),
                        memory_mb=int(bounds.get("memoryMiB", limits.memory_mb)),
                        wait_seconds=limits.wait_seconds)
        images = data.get("images") or {}
        allowed_registries = tuple(str(r) for r in images.get("allowedRegistries", []))
        guardrails = data.get("guardrails") or {}
        require_signed = bool(guardrails.get("requireSignedCommits", False))
        require_codeowners = bool(guardrails.get("requireCodeowners", False))
        argocd_data = data.get("argocd")
        helm = HelmSettings(allowed_hosts=tuple(
            str(h) for h in (data.get("helm") or {}).get("allowedHosts", [])))
        not_checked = Severity.parse(str((data.get("coverage") or {}).get(
            "notChecked", "warning")))
        remote_hosts = tuple(str(h).lower() for h in (data.get("kustomize") or {}).get(
            "remoteHosts", []))
        seen: set[str] = set()
        for index, entry in enumerate(data.get("clusters", [])):
            at = ["clusters", index]
            line = _line(doc, at)
            name = entry["name"]
            if name in seen:
                raise ConfigError(f"{label}:{line}: cluster {name!r} is declared twice")
            seen.add(name)
            draft = next((d for d in drafts if d.name == name), None)
            if draft is None:
                draft = _Draft(name=name)
                drafts.append(draft)
            else:
                draft.packs = None  # the config file decides the packs of a named cluster
            draft.source = f"{label}:{line}"
            draft.environment = str(entry.get("environment", ""))
            if "snapshot" in entry:
                draft.snapshot = _repo_path(entry["snapshot"], root, label,
                                            _line(doc, [*at, "snapshot"]))
            draft.paths = [_repo_path(p, root, label, _line(doc, [*at, "paths", i]))
                           for i, p in enumerate(entry.get("paths", []))]
            packs, policies, overrides = _selection(entry, root, label, doc, at)
            if packs is not None:
                draft.packs = packs
            if policies is not None:
                draft.policies = policies
            if "excludedNamespaces" in entry:
                draft.excluded = [str(n) for n in entry["excludedNamespaces"]]
                draft.excluded_source = f"{label}:{_line(doc, [*at, 'excludedNamespaces'])}"
            if overrides is not None:
                draft.overrides = overrides
                draft.override_sources = {
                    pid: f"{label}:{_line(doc, [*at, 'overrides', pid])}" for pid in overrides}
        order = {name: i for i, name in enumerate(e["name"] for e in data.get("clusters", []))}
        drafts.sort(key=lambda d: order.get(d.name, len(order)))
    if not drafts:
        drafts = [_Draft(name="")]
    _place_stages(drafts, st_stages, st_problems)
    for d in drafts:
        d.override_sources = {**default_sources, **d.override_sources}
    clusters = tuple(_finish(d, defaults, default_paths, root, default_excluded)
                     for d in drafts)
    clusters = tuple(replace(c, staged_elsewhere=tuple(dict.fromkeys(
        s.path for other in clusters if other.name != c.name for s in other.stages)))
        if any(other.stages for other in clusters) else c for c in clusters)
    argocd = settings_from_config(argocd_data, {c.name: c.paths for c in clusters if c.name})
    clusters = tuple(replace(c, argocd=argocd) for c in clusters)
    return Config(clusters=clusters, source=label, acceptances=acceptances,
                  drift_ignore=drift_ignore, drift_ignore_lines=drift_ignore_lines,
                  drift_field_managers=field_managers, drift_field_types=field_types,
                  group_by=group_by,
                  security_tower=tuple(st_files), allowed_registries=allowed_registries,
                  require_signed=require_signed, require_codeowners=require_codeowners,
                  helm=helm, not_checked=not_checked, remote_hosts=remote_hosts,
                  limits=limits, cel_templates=cel_templates, admission=admission)
