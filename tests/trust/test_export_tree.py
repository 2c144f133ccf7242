"""The base side of a delta is read from git objects: no checkout, no filter, no hook."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checker.errors import InputError
from checker.trust import export_tree, resolve_base
from tests.accept.test_four_eyes import git, put


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    put(r, "apps/web.yaml", "kind: Pod\n")
    put(r, "apps/run.sh", "#!/bin/sh\n")
    put(r, ".gitattributes", "*.yaml filter=evil diff=evil\n")
    os.symlink("web.yaml", r / "apps/link.yaml")
    os.symlink("/etc/passwd", r / "apps/out.yaml")
    git(r, "init", "-q", "-b", "main")
    (r / "apps/run.sh").chmod(0o755)
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    return r


def test_tree_is_written_from_objects_without_filters(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    # a filter, textconv and hooks configured in the repository never run for the export
    git(repo, "config", "filter.evil.smudge", f"touch {marker}; cat")
    git(repo, "config", "filter.evil.clean", f"touch {marker}; cat")
    git(repo, "config", "diff.evil.textconv", f"touch {marker}; cat")
    hooks = repo / ".git/hooks"
    for name in ("post-checkout", "pre-commit", "reference-transaction"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / name).chmod(0o755)
    put(repo, "apps/web.yaml", "kind: Changed\n")  # the working tree: not the base
    tree = export_tree(repo, "main", tmp_path / "out")
    assert not marker.exists()
    assert (tree.root / "apps/web.yaml").read_text() == "kind: Pod\n"
    assert os.access(tree.root / "apps/run.sh", os.X_OK)
    assert tree.commit == git(repo, "rev-parse", "main")
    assert tree.tree == git(repo, "rev-parse", "main^{tree}")
    # symlinks are recreated as a checkout would; the loader's boundary judges them
    assert os.readlink(tree.root / "apps/link.yaml") == "web.yaml"
    assert os.readlink(tree.root / "apps/out.yaml") == "/etc/passwd"
    assert not (tree.root / ".git").exists()


def test_subfolder_root_exports_its_subtree(repo: Path, tmp_path: Path) -> None:
    tree = export_tree(repo / "apps", "main", tmp_path / "out")
    assert (tree.root / "web.yaml").read_text() == "kind: Pod\n"
    assert tree.tree == git(repo, "rev-parse", "main:apps")


def test_unknown_base_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(InputError, match="fetch-depth: 0"):
        resolve_base(repo, "f" * 40)
    with pytest.raises(InputError, match="invalid base"):
        resolve_base(repo, "--output=/tmp/x")
