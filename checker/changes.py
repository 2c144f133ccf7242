"""What a pull request changed: the (path, line) pairs of the head that the diff adds or edits.

Annotations and reports lead with findings on the lines a reviewer is looking at, so the
checker needs the pull request's diff. It comes from ``git diff BASE...HEAD`` (the changes of
the head since it left the base, what GitHub's "Files changed" shows), read as plain data:

- the diff of two commits' trees, never the working tree, so no clean/smudge filter runs;
- ``--no-ext-diff --no-textconv``: no diff driver or text conversion program runs, whatever
  the pull request's ``.gitattributes`` says; ``--text``: a file the pull request marks
  ``-diff`` or ``binary`` still shows its lines, so it cannot hide a change;
- no system or global git config (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``),
  ``core.attributesFile=/dev/null``, an environment without the job's variables, and every
  output setting that could change the format given on the command line (prefixes, colour,
  context lines, rename detection, relative paths, submodule format);
- zero context lines: every line of a hunk's new side is an added or edited line. Hunk bodies
  are skipped by their counts, so a manifest line that looks like a diff header is never read
  as one. Paths git quotes (``"b/\\303\\251 x.yaml"``) are unquoted; the tab git adds after a
  name with a space is dropped.

Renamed files count their edited lines only (a pure rename changes no line, as GitHub shows
it); deleted files and removed lines leave nothing on the head; a binary file counts its
"lines" as git splits them. Paths are relative to the repository's top directory.
:func:`parse` is pure; :func:`changed_lines` runs git once.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from checker.errors import InputError

__all__ = ["Changes", "ChangesError", "changed_lines", "git_environment", "parse",
           "repository_top"]

TIMEOUT_SECONDS = 120
MAX_DIFF_BYTES = 256 << 20  # a diff larger than this is refused, not read half
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12,
            ord("r"): 13, ord('"'): 34, ord("\\"): 92}
_PASSED = ("PATH", "LANG", "TMPDIR", "TZ", "SYSTEMROOT")


class ChangesError(InputError):
    """The diff could not be read (no base commit in the checkout, not a repository...)."""


@dataclass(frozen=True)
class Changes:
    """The lines a diff adds or edits, per head path: sorted, disjoint, inclusive ranges."""

    base: str
    head: str
    ranges: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    @property
    def files(self) -> frozenset[str]:
        """Head paths with at least one added or edited line."""
        return frozenset(self.ranges)

    def __len__(self) -> int:
        """How many lines are added or edited."""
        return sum(end - start + 1 for spans in self.ranges.values() for start, end in spans)

    def touches(self, path: str, line: int, end_line: int | None = None) -> bool:
        """Whether any line of ``line``..``end_line`` of ``path`` is added or edited."""
        spans = self.ranges.get(path)
        if not spans:
            return False
        last = line if end_line is None or end_line < line else end_line
        i = bisect.bisect_right(spans, (line, 1 << 62)) - 1  # the last span starting <= line
        if i >= 0 and spans[i][1] >= line:
            return True
        return i + 1 < len(spans) and spans[i + 1][0] <= last

    def lines(self) -> Iterator[tuple[str, int]]:
        """Every (path, line) added or edited, in path and line order."""
        for path in sorted(self.ranges):
            for start, end in self.ranges[path]:
                for line in range(start, end + 1):
                    yield path, line


def _unquote(raw: bytes) -> bytes:
    """A path as git writes it in a patch header: C-quoted in double quotes, or as is."""
    if not (len(raw) >= 2 and raw.startswith(b'"') and raw.endswith(b'"')):
        return raw
    out = bytearray()
    body, i = raw[1:-1], 0
    while i < len(body):
        c = body[i]
        if c != 0x5C or i + 1 >= len(body):  # not a backslash
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if 0x30 <= nxt <= 0x37 and re.fullmatch(rb"[0-7]{3}", body[i + 1:i + 4]):
            out.append(int(body[i + 1:i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return bytes(out)


def _new_path(header: bytes) -> str | None:
    """The head path of a ``+++ `` line, or None for ``/dev/null`` (a deleted file)."""
    name = header[4:].rstrip(b"\n").removesuffix(b"\r")
    if name.endswith(b"\t"):  # git adds a tab after a name that contains a space
        name = name[:-1]
    name = _unquote(name)
    if name == b"/dev/null":
        return None
    if not name.startswith(b"b/"):
        raise ChangesError(f"unexpected diff header {header[:200]!r}")
    return os.fsdecode(name[2:])


def _merge(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def parse(patch: bytes, base: str = "", head: str = "") -> Changes:
    """The added and edited head lines of a zero-context unified diff (``git diff -U0``)."""
    lines = patch.split(b"\n")
    ranges: dict[str, list[tuple[int, int]]] = {}
    path: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(b"diff --git ") or line.startswith(b"diff --cc "):
            path = None
        elif line.startswith(b"+++ "):
            path = _new_path(line)
        elif line.startswith(b"@@ "):
            match = _HUNK.match(line)
            if match is None:
                raise ChangesError(f"unexpected hunk header {line[:200]!r}")
            old_count = 1 if match.group(2) is None else int(match.group(2))
            start = int(match.group(3))
            count = 1 if match.group(4) is None else int(match.group(4))
            if path is not None and count > 0:
                ranges.setdefault(path, []).append((start, start + count - 1))
            # skip the hunk's body by its counts: its text is never read as a header
            remaining = old_count + count
            while remaining > 0 and i < len(lines):
                if not lines[i].startswith(b"\\"):  # "\ No newline at end of file"
                    remaining -= 1
                i += 1
            while i < len(lines) and lines[i].startswith(b"\\"):
                i += 1
    return Changes(base, head, {p: _merge(s) for p, s in sorted(ranges.items())})


def git_environment() -> dict[str, str]:
    """An environment for git that holds none of the job's variables or configuration."""
    env = {k: os.environ[k] for k in _PASSED if k in os.environ}
    env.update({"LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_ATTR_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                "GIT_NO_REPLACE_OBJECTS": "1", "GIT_OPTIONAL_LOCKS": "0",
                "HOME": os.devnull, "XDG_CONFIG_HOME": os.devnull})
    return env


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = ["git", "-C", str(repo), "-c", f"safe.directory={repo}",
               "-c", f"core.attributesFile={os.devnull}", "-c", "core.fsmonitor=false",
               "-c", "core.quotePath=true", "-c", "diff.external=", *args]
    try:
        return subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS,
                              check=False, env=git_environment())
    except FileNotFoundError:
        raise ChangesError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise ChangesError(f"git {args[0]} took longer than {TIMEOUT_SECONDS}s") from None


def _failure(proc: subprocess.CompletedProcess[bytes]) -> str:
    message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return message[-1] if message else f"exit code {proc.returncode}"


def repository_top(folder: Path) -> Path | None:
    """The top directory of the git work tree ``folder`` is in, or None outside one."""
    proc = _git(folder, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        return None
    top = os.fsdecode(proc.stdout.rstrip(b"\n"))
    return Path(top).resolve() if top else None


def _commit(repo: Path, ref: str, what: str) -> str:
    if not ref or ref.startswith("-"):
        raise ChangesError(f"{what} {ref!r} is not a commit")
    proc = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}")
    if proc.returncode != 0:
        raise ChangesError(
            f"the {what} commit {ref} is not in the checkout: check out with fetch-depth: 2 "
            "on the merge commit (or fetch-depth: 0) so the diff can be read")
    return proc.stdout.decode("ascii", "replace").strip()


def changed_lines(repo: Path, base: str, head: str = "HEAD") -> Changes:
    """The lines of ``head`` that ``git diff base...head`` adds or edits (see the module)."""
    base_id, head_id = _commit(repo, base, "base"), _commit(repo, head, "head")
    proc = _git(repo, "diff", "--no-ext-diff", "--no-textconv", "--text", "--no-color",
                "--no-relative", "--find-renames", "--unified=0", "--inter-hunk-context=0",
                "--src-prefix=a/", "--dst-prefix=b/", "--submodule=short",
                "--ignore-submodules=none", "--diff-algorithm=myers", "--indent-heuristic",
                f"{base_id}...{head_id}", "--")
    if proc.returncode != 0:
        why = _failure(proc)
        hint = (": check out with fetch-depth: 2 on the merge commit (or fetch-depth: 0)"
                if "merge base" in why else "")
        raise ChangesError(f"git diff {base_id[:12]}...{head_id[:12]} failed: {why}{hint}")
    if len(proc.stdout) > MAX_DIFF_BYTES:
        raise ChangesError(f"the diff {base_id[:12]}...{head_id[:12]} is larger than "
                           f"{MAX_DIFF_BYTES >> 20} MiB")
    return parse(proc.stdout, base_id, head_id)
