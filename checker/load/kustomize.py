"""Render Kustomize folders with the real Kustomize and map objects back to their sources.

Each root is rendered through a throw-away wrapper kustomization that turns on
``buildMetadata: [originAnnotations, transformerAnnotations]``, so every rendered object says
which file it came from and which kustomizations' patches acted on it (``patchmarks`` points
the fields a patch set at the patch); the user's files are never modified.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.load import helmfetch, netguard, patchmarks, workspace, yamlfile
from checker.load.objects import (
    RULE_KUSTOMIZE,
    LoadResult,
    Marks,
    input_finding,
    is_k8s_object,
    make_resource,
    read_documents,
    relpath,
    resources_from_document,
)
from checker.load.yamlfile import SAFE_LOADER, Document, YamlProblem, decode, parse_documents
from checker.model import Coverage, Finding, Resource, Severity, SourceLocation

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN = "config.kubernetes.io/origin"
# what the wrappers ask Kustomize to record (origin files, patch transformers)
BUILD_METADATA = ["originAnnotations", "transformerAnnotations"]
TIMEOUT_SECONDS = 120
# Builds at once. Each is a Kustomize process that is mostly CPU (about 0.14 s of it for a
# small overlay with a patch); more than the cores only queues them (docs/performance.md).
BUILD_WORKERS = 4
COMPONENT_KIND = "Component"
# Fields of a kustomization that name other kustomizations (folders) or files to read.
FOLDER_FIELDS = ("resources", "bases", "components")
FILE_FIELDS = ("patchesStrategicMerge",)
PATCH_FIELDS = ("patches", "patchesJson6902")
# klog's header: "E1202 05:52:55.983129   15852 run.go:72] " (level, date, time, pid, source)
_KLOG = re.compile(r"^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]]+\] ")
_COMMAND_FAILED = re.compile(r'^"command failed" err="(.*)"$', re.DOTALL)
_TIMESTAMP = re.compile(
    r"\b\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_TEMP = re.compile(r"/(?:private/)?(?:tmp|var/folders)/[^\s'\"`:,)]*")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP = re.compile(r"^[\w.-]+@[\w.-]+:")
_HOSTLIKE = re.compile(r"^(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?/", re.IGNORECASE)


class KustomizeUnavailable(Exception):
    """Neither ``kustomize`` nor ``kubectl`` is installed."""


def kustomization_file(directory: Path) -> Path | None:
    """The kustomization file of a folder, if it has one."""
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def is_remote(entry: str) -> bool:
    """Whether a kustomization entry names something Kustomize would fetch over the network.

    URLs (``https://``, ``git::``, ``ssh://``), scp-like ``git@host:repo`` and
    ``host.tld/owner/repo`` forms, which Kustomize clones with git.
    """
    text = entry.strip()
    return bool(_SCHEME.match(text) or text.startswith("git::") or _SCP.match(text)
                or _HOSTLIKE.match(text))


def remote_host(entry: str) -> str:
    """The host a remote entry would be fetched from (lower case, no port)."""
    text = entry.strip()
    if text.startswith("git::"):
        text = text[5:]
    match = _SCP.match(text)
    if match:
        return text.split("@", 1)[1].split(":", 1)[0].lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    host = text.split("/", 1)[0].rsplit("@", 1)[-1]
    return host.split(":", 1)[0].lower()


@dataclass(frozen=True)
class Reference:
    """One entry of a kustomization that names another folder, a file, or a remote target."""

    entry: str
    field: str
    line: int
    target: Path | None      # resolved local path (None for a remote entry)
    remote: bool = False


@dataclass
class Kustomization:
    """A parsed kustomization file: its data, positions and references."""

    directory: Path
    file: Path
    data: dict[str, Any]
    refs: list[Reference]
    problem: str = ""         # why the file could not be read ("" when it could)

    @property
    def is_component(self) -> bool:
        """``kind: Component``: only ever rendered through a kustomization that uses it."""
        return self.data.get("kind") == COMPONENT_KIND

    def folders(self) -> list[Reference]:
        """Local references to folders (kustomizations to accumulate)."""
        return [r for r in self.refs if r.target is not None and r.target.is_dir()]


@functools.lru_cache(maxsize=4096)
def _read(directory: Path, mtime: float) -> Kustomization | None:
    file = kustomization_file(directory)
    if file is None:
        return None
    empty = Kustomization(directory, file, {}, [])
    try:
        text = decode(workspace.read_bytes(file, None, yamlfile.MAX_FILE_BYTES))
    except workspace.Refused as refused:  # a FIFO or device is never opened
        empty.problem = refused.message
        return empty
    except OSError as err:
        empty.problem = f"cannot read: {err.strerror}"
        return empty
    except YamlProblem as problem:
        empty.problem = problem.message
        return empty
    docs = [d for d in parse_documents(text)]
    doc = docs[0] if docs else None
    if isinstance(doc, YamlProblem):
        empty.problem = f"line {doc.line}: {doc.message}"
        return empty
    if doc is None or not isinstance(doc.data, dict):
        return empty
    data: dict[str, Any] = doc.data
    refs: list[Reference] = []

    def line(path: tuple[str | int, ...]) -> int:
        span = doc.spans.get(path)
        return span[0] if span else doc.line

    for key in (*FOLDER_FIELDS, *FILE_FIELDS):
        entries = data.get(key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, str) or (key in FILE_FIELDS and "\n" in entry):
                continue  # inline patches
            if key in FOLDER_FIELDS and is_remote(entry):
                refs.append(Reference(entry, key, line((key, index)), None, remote=True))
                continue
            refs.append(Reference(entry, key, line((key, index)),
                                  Path(os.path.normpath(directory.resolve() / entry))))
    for key in PATCH_FIELDS:
        entries = data.get(key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                refs.append(Reference(entry["path"], key, line((key, index, "path")),
                                      Path(os.path.normpath(directory.resolve()
                                                            / entry["path"]))))
    return Kustomization(directory, file, data, refs)


def read_kustomization(directory: Path) -> Kustomization | None:
    """The parsed kustomization of a folder (cached while the file is unchanged)."""
    file = kustomization_file(directory)
    if file is None:
        return None
    try:
        mtime = file.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _read(directory.resolve(), mtime)


def _references(directory: Path) -> list[Path]:
    kust = read_kustomization(directory)
    return [r.target for r in kust.refs if r.target is not None] if kust else []


@dataclass
class Plan:
    """Which folders to render, what they own, and problems found before rendering."""

    roots: list[Path]
    owned: set[Path]
    findings: list[Finding] = field(default_factory=list)
    broken: set[Path] = field(default_factory=set)   # folders in a cycle: never rendered


def _cycles(directories: Sequence[Path], root: Path) -> tuple[list[Finding], set[Path]]:
    """Self-references and cycles between kustomizations, each reported once, naming the files.

    Kustomize refuses to build them; without this check the folders in a cycle include each
    other, so none of them is a root and nothing was rendered or reported.
    """
    findings: list[Finding] = []
    broken: set[Path] = set()
    reported: set[frozenset[Path]] = set()
    state: dict[Path, int] = {}  # 1 on the stack, 2 done

    def visit(directory: Path, stack: list[tuple[Path, Reference | None]]) -> None:
        state[directory] = 1
        kust = read_kustomization(directory)
        for ref in kust.folders() if kust else []:
            assert ref.target is not None
            target = ref.target.resolve()
            if kustomization_file(target) is None:
                continue
            if state.get(target) == 1:
                names = [d for d, _ in stack] + [directory]
                cycle = names[next(i for i, d in enumerate(names) if d == target):]
                key = frozenset(cycle)
                broken.update(cycle)
                if key in reported:
                    continue
                reported.add(key)
                assert kust is not None
                files = [relpath(read_kustomization(d).file, root)  # type: ignore[union-attr]
                         for d in cycle]
                rel = relpath(kust.file, root)
                if len(cycle) == 1:
                    message = (f"kustomization {rel} includes its own folder ({ref.field} "
                               f"entry {ref.entry!r}); Kustomize cannot build it, so nothing "
                               "in it was rendered")
                else:
                    chain = " -> ".join([*files, files[0]])
                    message = (f"kustomization cycle: {chain} ({ref.field} entry "
                               f"{ref.entry!r} in {rel}); Kustomize cannot build these "
                               "folders, so nothing in them was rendered")
                findings.append(input_finding(RULE_KUSTOMIZE, message, rel, ref.line))
            elif target not in state and workspace.resolves_inside(target, root):
                visit(target, [*stack, (directory, ref)])
        state[directory] = 2

    for directory in directories:
        d = directory.resolve()
        if d not in state:
            visit(d, [])
    return findings, broken



def plan(directories: Sequence[Path], root: Path | None = None) -> Plan:
    """Choose which folders to render: those no other kustomization includes, and never a
    Component on its own (it only has a meaning inside the kustomizations that use it).

    Also reports self-references and cycles (folders in one are never rendered, and the error
    names the files) and returns the set of files and folders owned by some kustomization.
    """
    root = root or Path(os.path.commonpath([d.resolve() for d in directories])
                        if directories else ".")
    owned: set[Path] = set()
    referenced_dirs: set[Path] = set()
    components: set[Path] = set()
    for directory in directories:
        kust = read_kustomization(directory)
        if kust is not None and kust.is_component:
            components.add(directory.resolve())
        for ref in _references(directory):
            owned.add(ref)
            if ref.is_dir() and ref.resolve() != directory.resolve():
                referenced_dirs.add(ref.resolve())
    findings, broken = _cycles(directories, root)
    roots = []
    for d in directories:
        if d.resolve() in referenced_dirs or d.resolve() in components or d.resolve() in broken:
            continue
        reached = _reaches(d, broken, root) if broken else None
        if reached is not None:
            kust = read_kustomization(d)
            findings.append(input_finding(
                RULE_KUSTOMIZE, f"kustomization {relpath(kust.file if kust else d, root)} "
                f"was not rendered: it includes {relpath(reached, root)}, which is in a "
                "kustomization cycle", relpath(kust.file if kust else d, root)))
            continue
        roots.append(d)
    return Plan(roots, owned, findings, broken)


def _reaches(directory: Path, targets: set[Path], root: Path) -> Path | None:
    """The first folder of ``targets`` the kustomization graph from ``directory`` reaches."""
    seen: set[Path] = set()
    queue = [directory.resolve()]
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        kust = read_kustomization(current)
        for ref in kust.folders() if kust else []:
            assert ref.target is not None
            target = ref.target.resolve()
            if target in targets:
                return target
            if workspace.resolves_inside(target, root):
                queue.append(target)
    return None


def remote_references(directory: Path, root: Path,
                      escapes: list[tuple[Kustomization, Reference]] | None = None,
                      ) -> list[tuple[Kustomization, Reference]]:
    """Remote entries anywhere in the kustomization graph below ``directory``.

    Kustomize fetches these itself while building, so they are found before it runs. Local
    entries that leave ``root`` (a pull request naming ``../../../etc``) go to ``escapes``.
    """
    found: list[tuple[Kustomization, Reference]] = []
    seen: set[Path] = set()
    start = directory.resolve()
    queue = [start]
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        kust = read_kustomization(current)
        if kust is None:
            continue
        for ref in kust.refs:
            if ref.remote:
                found.append((kust, ref))
            elif ref.target is not None and not workspace.lexically_inside(
                    ref.target, root) and not workspace.lexically_inside(ref.target, start):
                # a "../.." that leaves (a wrapper outside the root may name its own files;
                # symlinks that lead out are found by links_out)
                if escapes is not None:
                    escapes.append((kust, ref))
            elif ref.target is not None and ref.target.is_dir():
                queue.append(ref.target.resolve())
    return found


def applied_files(directory: Path, root: Path) -> list[Path]:
    """The files whose objects a build of ``directory`` applies: the ``resources`` (and
    ``bases``) files of its kustomization graph; a folder without a kustomization is walked,
    with sub-folders that have one followed through theirs (as Flux's generated one does)."""
    out: list[Path] = []
    seen: set[Path] = set()
    queue = [directory.resolve()]
    while queue:
        current = queue.pop(0)
        if current in seen or not workspace.resolves_inside(current, root):
            continue
        seen.add(current)
        kust = read_kustomization(current)
        if kust is None:
            for dirpath, dirnames, filenames in os.walk(current):
                here = Path(dirpath)
                subs = sorted(d for d in dirnames if not d.startswith(".")
                              and d not in ("node_modules", "__pycache__"))
                dirnames[:] = [d for d in subs if kustomization_file(here / d) is None]
                queue.extend(here / d for d in subs if kustomization_file(here / d) is not None)
                out.extend(here / n for n in sorted(filenames))
            continue
        for ref in kust.refs:
            if ref.target is None or ref.field not in ("resources", "bases", "components"):
                continue
            if ref.target.is_dir():
                queue.append(ref.target.resolve())
            elif ref.field != "components" and workspace.resolves_inside(ref.target, root):
                out.append(ref.target)
    return out


def host_allowed(host: str, allowed: Sequence[str]) -> str:
    """"" if ``host`` may be fetched from, else why not.

    The trusted config lists hosts (matched as Helm's ``allowedHosts`` are: ``host`` or
    ``*.domain``); loopback, private, link-local and other non-public addresses are refused
    whatever it says (names are resolved and every address checked by ``helmfetch``'s rule).
    """
    if not host:
        return "no host"
    if not helmfetch.host_allowed(host, None, allowed):
        return (f"host {host} is not allowed by the repository config (kustomize.remoteHosts)"
                if allowed else "remote bases are not fetched unless the repository config "
                "allows their host (kustomize.remoteHosts)")
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return f"host {host} cannot be resolved"
    for address in sorted({str(info[4][0]) for info in infos}):
        if not helmfetch.is_public(address):
            return f"host {host} resolves to a non-public address ({address})"
    return ""


def command() -> list[str]:
    """The Kustomize command line available here."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise KustomizeUnavailable


def clean_message(stderr: str, wrapper: Path, root: Path, returncode: int) -> str:
    """Kustomize's whole error text, without klog headers, our temporary paths, timestamps
    and process ids, so the same input gives the same message on every run."""
    lines: list[str] = []
    for raw in stderr.strip().splitlines():
        line = _KLOG.sub("", raw)
        match = _COMMAND_FAILED.match(line)
        if match:
            try:
                line = json.loads(f'"{match.group(1)}"')
            except ValueError:
                line = match.group(1)
        lines.append(line.rstrip())
    text = "\n".join(x for x in lines if x.strip()) or f"exit code {returncode}"
    for base in {str(wrapper.resolve()), str(wrapper)}:
        text = text.replace(base + "/", "").replace(base, ".")
    for base in {str(root.resolve()), str(root)}:
        if base not in ("", "/", "."):
            text = text.replace(base + "/", "").replace(base, ".")
    # the wrapper names repository folders relative to itself ("../../repo/app")
    up = os.path.relpath(root.resolve(), wrapper.resolve())
    if any(part != ".." for part in Path(up).parts):
        text = text.replace(f"'{up}/", "'").replace(f"'{up}'", "'.'").replace(up + "/", "")
    text = _TEMP.sub("<temp>", text)
    return _TIMESTAMP.sub("<time>", text)


@functools.lru_cache(maxsize=1)
def shim_command() -> str:
    """Path of an executable that runs ``checker.load.helmshim.main`` with this interpreter and
    this package (imported by name only: the shim renders through ``checker.load.helm``)."""
    package_parent = Path(__file__).resolve().parents[2]
    folder = Path(tempfile.mkdtemp(prefix="gitops-checker-helm-shim-"))
    creator = os.getpid()

    def cleanup() -> None:
        if os.getpid() == creator:  # not in a forked worker that exits through atexit
            shutil.rmtree(folder, ignore_errors=True)
    atexit.register(cleanup)
    script = folder / "helm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(package_parent)!r})\n"
        "from checker.load.helmshim import main\n"
        "sys.exit(main())\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def helm_flags() -> list[str]:
    """``helmCharts:`` render through gitops-checker's helm shim (never a pull by Kustomize)."""
    return ["--enable-helm", "--helm-command", shim_command()]


class KustomizeFailed(Exception):
    """Kustomize exited non-zero; the message is already cleaned."""


def run_build(wrapper: Path, root: Path, remote_hosts: Sequence[str] = ()) -> str:
    """``kustomize build`` of a prepared folder; raises KustomizeFailed with a clean message.

    The build gets a minimal environment and reaches the network only through
    :class:`checker.load.netguard.ConnectProxy`, which admits ``remote_hosts`` (the trusted
    config's, already checked) and checks each address when the connection is made; with no
    host, every proxy variable points at a closed port.
    """
    home = Path(tempfile.mkdtemp(prefix="gitops-checker-home-"))
    try:
        if remote_hosts:
            with netguard.ConnectProxy(remote_hosts) as proxy:
                proc = subprocess.run(
                    [*command(), *helm_flags(), str(wrapper)], capture_output=True, text=True,
                    timeout=TIMEOUT_SECONDS, check=False,
                    env=netguard.build_environment(home, proxy.url))
        else:
            proc = subprocess.run(
                [*command(), *helm_flags(), str(wrapper)], capture_output=True, text=True,
                timeout=TIMEOUT_SECONDS, check=False, env=netguard.build_environment(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise KustomizeFailed(clean_message(proc.stderr, wrapper, root, proc.returncode))
    return proc.stdout


def _strip_origin(data: dict[str, Any]) -> str | None:
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return None
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or ORIGIN not in annotations:
        return None
    origin = annotations.pop(ORIGIN)
    if not annotations:
        del meta["annotations"]
    return origin if isinstance(origin, str) else None


class _Sources:
    """Cache of parsed source files, to find the document a rendered object came from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[Path, list[Document]] = {}

    def find(self, file: Path, data: dict[str, Any]) -> tuple[str, Document | None]:
        rel = relpath(file, self.root)
        if file not in self.cache:
            docs, _ = (read_documents(file, rel, self.root) if file.is_file()
                       else ([], []))
            self.cache[file] = [d for d in docs if is_k8s_object(d.data)]
        same_kind = [d for d in self.cache[file] if d.data.get("kind") == data.get("kind")]
        name = str((data.get("metadata") or {}).get("name", ""))

        def source_name(doc: Document) -> str:
            meta = doc.data.get("metadata")
            return str(meta.get("name", "")) if isinstance(meta, dict) else ""

        for candidates in (
            [d for d in same_kind if source_name(d) == name],
            [d for d in same_kind if source_name(d) and name.endswith(source_name(d))],
            [d for d in same_kind if source_name(d) and source_name(d) in name],
            same_kind if len(same_kind) == 1 else [],
        ):
            if candidates:
                return rel, candidates[0]
        return rel, None


def _resource(data: dict[str, Any], origin: str | None, wrapper: Path, kdir: Path,
              sources: _Sources, copies: Mapping[Path, Path] | None = None,
              patched: Sequence[str] = (), index: patchmarks.PatchIndex | None = None,
              ) -> Resource:
    source_file: Path | None = None
    if origin:
        try:
            info = yaml.load(origin, Loader=SAFE_LOADER)
        except yaml.YAMLError:
            info = None
        if isinstance(info, dict):
            where = info.get("path") or info.get("configuredIn")
            if isinstance(where, str) and "://" not in where:
                source_file = Path(os.path.normpath(wrapper / where))
                if copies:
                    source_file = copies.get(source_file, source_file)
    if source_file is None:
        source_file = kustomization_file(kdir) or kdir
    rel, doc = sources.find(source_file, data)
    patches = [p for where in patched if index is not None
               for p in index.patches(Path(os.path.normpath(wrapper / where)))]
    if patches:  # lists may be reordered and edited: marks by identity, then the patches
        marks = patchmarks.rendered_marks(data, (rel, doc) if doc is not None else None,
                                          patches)
        return make_resource(data, doc.location(rel) if doc is not None
                             else SourceLocation(rel, 1, 1), marks)
    if doc is None:
        return make_resource(data, SourceLocation(rel, 1, 1), {})
    return make_resource(data, doc.location(rel), Marks(doc.spans, rel))


def links_out(directory: Path, root: Path) -> list[tuple[Path, str]]:
    """Inputs of a Kustomize root that leave ``root``: (path, where it really is).

    Kustomize follows symlinks and reads bases anywhere on disk, so before it runs, every
    folder the root reaches through ``resources``/``bases``/``components``/patches is walked
    (without following links) and every symlink in them, and every reference, must stay
    inside the repository. ``directory`` itself is the caller's (a discovered folder, or an
    overlay Argo CD support generated outside the repository).
    """
    top = root.resolve()
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    queue = [directory]
    while queue:
        folder = queue.pop(0)
        real = folder.resolve()
        if real in seen:
            continue
        seen.add(real)
        if folder is not directory and real != top and top not in real.parents:
            out.append((folder, str(real)))  # the root itself may be a generated overlay
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in sorted([*dirnames, *filenames]):
                entry = Path(dirpath, name)
                target = workspace.escapes(entry, root) if entry.is_symlink() else None
                if target is not None:
                    out.append((entry, target))
        for ref in _references(folder):
            real_ref = ref.resolve()
            if real_ref != top and top not in real_ref.parents:
                if all(target != str(real_ref) for _, target in out):  # not a link met above
                    out.append((ref, str(real_ref)))
            elif ref.is_dir():
                queue.append(ref)
    return list(dict.fromkeys(out))


Prepare = Callable[[Path], Mapping[Path, Path]]


def render_prepared(prepare: Prepare, root: Path, *, what: str, declared: str,
                    fallback_dir: Path, graph: Sequence[Path],
                    remote_hosts: Sequence[str] = (), kind: str = "kustomize",
                    line: int = 1, graph_root: Path | None = None) -> LoadResult:
    """Build a kustomization that ``prepare`` writes into a fresh temporary folder.

    ``prepare(folder)`` writes ``folder/kustomization.yaml`` (and any copied files) and returns
    a map of copied file -> original file, so objects point at the repository's files.
    ``graph`` are the repository folders the build reads (checked for remote entries first),
    ``what`` names the input for people, ``declared`` is the file it is declared in.
    Every problem is a finding; the ledger gets a ``rendered`` or ``not-checked`` entry.
    """
    result = LoadResult(files={declared})
    escapes: list[tuple[Kustomization, Reference]] = []
    remote = [pair for d in graph for pair in remote_references(d, graph_root or root,
                                                                    escapes)]
    if escapes:
        for kust, ref in escapes:
            where = relpath(kust.file, root)
            result.findings.append(input_finding(
                RULE_KUSTOMIZE, f"kustomize build {what} not run: {ref.field} entry "
                f"{ref.entry!r} in {where if not where.startswith('..') else 'the kustomization'}"
                " leaves the repository", where if not where.startswith("..") else declared,
                ref.line if not where.startswith("..") else line))
        return result
    refused = [(k, r, why) for k, r in remote
               if (why := host_allowed(remote_host(r.entry), remote_hosts))]
    if refused:
        for kust, ref, why in refused:
            result.not_checked(kind, f"{what} (remote {ref.field} entry {ref.entry!r})",
                               relpath(kust.file, root), why, ref.line)
        return result
    leaving = [pair for folder in graph if workspace.lexically_inside(folder, root)
               for pair in links_out(folder, root)]  # (not the checker's own temporary copies)
    if leaving:  # kustomize follows symlinks and reads bases anywhere: not run on these
        path, target = leaving[0]
        more = f" (and {len(leaving) - 1} more)" if len(leaving) > 1 else ""
        result.not_checked(
            kind, what, declared, f"its input {relpath(path, root)} resolves to {target}, "
            f"outside the repository{more}; it was not rendered, because kustomize would "
            "read it", line, severity=Severity.ERROR)
        return result
    wrapper = Path(tempfile.mkdtemp(prefix="gitops-checker-kustomize-"))
    try:
        copies = prepare(wrapper)
        output = run_build(wrapper, root, remote_hosts if remote else ())
    except KustomizeUnavailable:
        result.findings.append(input_finding(
            RULE_KUSTOMIZE, f"cannot render {what}: neither 'kustomize' nor 'kubectl' is "
            "installed", declared, line))
        return result
    except KustomizeFailed as err:
        result.findings.append(input_finding(
            RULE_KUSTOMIZE, f"kustomize build {what} failed: {err}", declared, line))
        return result
    except (subprocess.TimeoutExpired, OSError) as err:
        reason = (f"timed out after {TIMEOUT_SECONDS} s"
                  if isinstance(err, subprocess.TimeoutExpired) else str(err.strerror or err))
        result.findings.append(input_finding(
            RULE_KUSTOMIZE, f"kustomize build {what} failed: {reason}", declared, line))
        return result
    finally:
        shutil.rmtree(wrapper, ignore_errors=True)
    sources = _Sources(root)
    patch_index = patchmarks.PatchIndex(root, copies)
    for index, item in enumerate(parse_documents(output), start=1):
        if isinstance(item, YamlProblem):
            result.findings.append(input_finding(
                RULE_KUSTOMIZE, f"kustomize build {what}: rendered document {index} cannot be "
                f"checked: {item.message}", declared, line))
            continue
        if not is_k8s_object(item.data):
            if item.data is not None:
                result.findings.append(input_finding(
                    RULE_KUSTOMIZE, f"kustomize build {what}: rendered document {index} is not "
                    "a Kubernetes object", declared, line))
            continue
        for res in resources_from_document(item, declared):
            body = dict(res.body)
            origin = _strip_origin(body)
            patched = patchmarks.strip_transformations(body)
            result.resources.append(_resource(body, origin, wrapper, fallback_dir, sources,
                                              copies, patched, patch_index))
            result.files.add(result.resources[-1].location.path)
    result.coverage.append(Coverage("rendered", kind, what, declared, line,
                                    produced=len(result.resources)))
    return result


def render(directory: Path, root: Path, remote_hosts: Sequence[str] = ()) -> LoadResult:
    """Render one Kustomize root into Resources that point at their source files.

    The root is built through a throw-away wrapper kustomization that turns on origin
    annotations; the user's files are never modified.
    """
    kfile = kustomization_file(directory)
    declared = relpath(kfile or directory, root)

    def prepare(wrapper: Path) -> Mapping[Path, Path]:
        target = os.path.relpath(directory.resolve(), wrapper)
        (wrapper / "kustomization.yaml").write_text(
            yaml.safe_dump({"resources": [target], "buildMetadata": BUILD_METADATA}),
            encoding="utf-8")
        return {}

    return render_prepared(prepare, root, what=relpath(directory, root), declared=declared,
                           fallback_dir=directory, graph=[directory],
                           remote_hosts=remote_hosts)


def render_all(directories: Iterable[Path], root: Path, remote_hosts: Sequence[str] = (),
               workers: int | None = None) -> Iterator[LoadResult]:
    """Render folders concurrently (each is a separate process); results in input order.

    ``workers`` builds run at once (default ``BUILD_WORKERS``); each build keeps its own
    bounds (``TIMEOUT_SECONDS``, the minimal environment, the loopback proxy), and the results
    are the same whatever the number (tests/load/test_kustomize_concurrency.py).
    """
    dirs = list(directories)
    if not dirs:
        return
    count = max(1, min(workers or BUILD_WORKERS, len(dirs)))
    if count == 1:
        yield from (render(d, root, remote_hosts) for d in dirs)
        return
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="kustomize") as pool:
        yield from pool.map(lambda d: render(d, root, remote_hosts), dirs)
