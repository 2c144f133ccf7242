"""checker/changes.py: the head lines a pull request adds or edits, from real git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from checker.changes import Changes, ChangesError, changed_lines, parse, repository_top


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def commit(repo: Path, files: dict[str, bytes | None], message: str) -> str:
    for name, data in files.items():
        path = repo / name
        if data is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def lines(changes: Changes) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for path, line in changes.lines():
        out.setdefault(path, []).append(line)
    return out


def test_edits_additions_renames_deletions_and_odd_names(repo: Path) -> None:
    base = commit(repo, {
        "apps/web.yaml": b"a\nb\nc\n",
        "with space.yaml": b"1\n2\n",
        "\u00e9t\u00e9.yaml": b"x\n",
        "gone.yaml": b"k\n",
        "old/name.yaml": b"r1\nr2\nr3\nr4\nr5\nr6\nr7\nr8\n",
        "blob.bin": b"\x00\x01\x02\n",
    }, "base")
    os.makedirs(repo / "new", exist_ok=True)
    git(repo, "mv", "old/name.yaml", "new/name.yaml")
    commit(repo, {
        "apps/web.yaml": b"a\nB\nc\nd\ne\n",     # line 2 edited, 4-5 added
        "with space.yaml": b"1\n2\n3\n",         # line 3 added
        "\u00e9t\u00e9.yaml": b"y\n",            # line 1 edited
        "gone.yaml": None,                       # deleted: nothing on the head
        "new/name.yaml": b"r1\nr2\nr3\nr4\nR5\nr6\nr7\nr8\n",  # renamed, line 5 edited
        "blob.bin": b"\x00\x01\x03\nmore\n",     # binary: counted as git splits it
        "tab\tname.yaml": b"t\n",                # quoted by git
        "apps/only-removed.yaml": b"z\n",
    }, "head")
    commit(repo, {"apps/only-removed.yaml": b""}, "remove a line")
    found = changed_lines(repo, base)
    assert found.base == base and found.head == git(repo, "rev-parse", "HEAD")
    assert lines(found) == {
        "apps/web.yaml": [2, 4, 5],
        "blob.bin": [1, 2],
        "new/name.yaml": [5],
        "tab\tname.yaml": [1],
        "with space.yaml": [3],
        "\u00e9t\u00e9.yaml": [1],
    }
    assert "gone.yaml" not in found.files and "apps/only-removed.yaml" not in found.files
    assert found.touches("apps/web.yaml", 2) and not found.touches("apps/web.yaml", 3)
    assert found.touches("apps/web.yaml", 3, 4)  # a span that reaches an edited line
    assert not found.touches("apps/web.yaml", 1) and not found.touches("apps/web.yaml", 6, 9)
    assert len(found) == 9


def test_pure_rename_changes_no_line(repo: Path) -> None:
    base = commit(repo, {"a.yaml": b"one\ntwo\nthree\n"}, "base")
    git(repo, "mv", "a.yaml", "b.yaml")
    commit(repo, {}, "rename")
    assert changed_lines(repo, base).ranges == {}


def test_pull_request_attributes_cannot_hide_lines_or_run_programs(repo: Path,
                                                                   tmp_path: Path) -> None:
    """A `-diff` attribute, a textconv and an external diff driver: all ignored."""
    witness = tmp_path / "ran"
    program = tmp_path / "driver.sh"
    program.write_text(f"#!/bin/sh\ntouch {witness}\necho '@@ -1 +1,500 @@'\n")
    program.chmod(0o755)
    git(repo, "config", "diff.evil.command", str(program))
    git(repo, "config", "diff.evil.textconv", str(program))
    git(repo, "config", "diff.external", str(program))
    base = commit(repo, {"a.yaml": b"1\n2\n", "b.yaml": b"1\n2\n"}, "base")
    commit(repo, {".gitattributes": b"a.yaml -diff\nb.yaml diff=evil\n",
                  "a.yaml": b"1\nTWO\n", "b.yaml": b"ONE\n2\n"}, "head")
    global_config = tmp_path / "global"
    global_config.write_text(f"[diff]\n\texternal = {program}\n")
    os.environ["GIT_CONFIG_GLOBAL"] = str(global_config)
    os.environ["GIT_EXTERNAL_DIFF"] = str(program)
    try:
        found = changed_lines(repo, base)
    finally:
        del os.environ["GIT_CONFIG_GLOBAL"], os.environ["GIT_EXTERNAL_DIFF"]
    assert lines(found) == {".gitattributes": [1, 2], "a.yaml": [2], "b.yaml": [1]}
    assert not witness.exists()
    git(repo, "diff", base, "HEAD")  # a plain git diff in the same repository runs it
    assert witness.exists()


def test_a_line_that_looks_like_a_header_is_content(repo: Path) -> None:
    base = commit(repo, {"a.yaml": b"x\n"}, "base")
    commit(repo, {"a.yaml": b"x\n+++ b/evil.yaml\n@@ -1 +1,400 @@\ndiff --git a/q b/q\n"},
           "head")
    assert lines(changed_lines(repo, base)) == {"a.yaml": [2, 3, 4]}


def test_merge_commit_against_its_first_parent(repo: Path) -> None:
    """What GitHub checks out: the merge of the pull request into the base."""
    commit(repo, {"a.yaml": b"1\n2\n3\n"}, "root")
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, {"a.yaml": b"1\n2\nTHREE\n"}, "pull request")
    git(repo, "checkout", "-q", "main")
    base = commit(repo, {"b.yaml": b"base moved on\n"}, "base moves")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "topic")
    assert lines(changed_lines(repo, base)) == {"a.yaml": [3]}


def test_missing_base_names_the_fetch_depth(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"a.yaml": b"1\n"}, "one")
    with pytest.raises(ChangesError, match="fetch-depth: 2"):
        changed_lines(repo, "0" * 40)
    with pytest.raises(ChangesError, match="is not a commit"):
        changed_lines(repo, "--output=/tmp/x")
    # a shallow clone of the head alone: the base object is absent
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"a.yaml": b"2\n"}, "two")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    with pytest.raises(ChangesError, match="fetch-depth"):
        changed_lines(clone, base)


def test_repository_top(repo: Path, tmp_path: Path) -> None:
    (repo / "sub" / "dir").mkdir(parents=True)
    assert repository_top(repo / "sub" / "dir") == repo.resolve()
    outside = tmp_path / "plain"
    outside.mkdir()
    assert repository_top(outside) is None


def test_parse_zero_counts_and_no_newline_marker() -> None:
    patch = (b"diff --git a/a.yaml b/a.yaml\n--- a/a.yaml\n+++ b/a.yaml\n"
             b"@@ -3 +2,0 @@\n-gone\n"                       # a removal: no head line
             b"@@ -7,0 +8,2 @@\n+new\n+new2\n\\ No newline at end of file\n"
             b"@@ -20 +21 @@\n-old\n+new\n"
             b"diff --git a/d.yaml b/d.yaml\ndeleted file mode 100644\n--- a/d.yaml\n"
             b"+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n")
    assert parse(patch).ranges == {"a.yaml": ((8, 9), (21, 21))}
    with pytest.raises(ChangesError):
        parse(b"+++ x/elsewhere\n")
