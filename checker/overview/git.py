"""Read-only access to a git repository through the ``git`` command line."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import IO

from checker.errors import InputError

TIMEOUT_SECONDS = 120


class Git:
    """Runs ``git -C <repo> ...`` and reads objects through one ``git cat-file --batch``."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._batch: subprocess.Popen[bytes] | None = None
        top = self.run("rev-parse", "--show-toplevel").strip()
        self.top = Path(top)
        self.repo = self.top  # pathspecs and paths are relative to the top from here on

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        """Run git; a failure raises InputError with git's own message."""
        proc = self.call(*args)
        if proc.returncode not in ok:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InputError(f"git {args[0]} failed in {self.repo}: "
                             f"{message[-1] if message else f'exit code {proc.returncode}'}")
        return proc.stdout.decode("utf-8", "replace")

    def call_input(self, text: str, *args: str) -> str:
        """Run git with ``text`` on standard input; a failure raises InputError."""
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), "-c", "core.quotepath=off", *args],
                input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise InputError(f"git {args[0]} took longer than {TIMEOUT_SECONDS}s") from None
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InputError(f"git {args[0]} failed in {self.repo}: "
                             f"{message[-1] if message else f'exit code {proc.returncode}'}")
        return proc.stdout.decode("utf-8", "replace")

    def call(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run git and return the completed process, whatever its exit code."""
        try:
            return subprocess.run(
                ["git", "-C", str(self.repo), "-c", "core.quotepath=off", *args],
                capture_output=True, timeout=TIMEOUT_SECONDS, check=False,
            )
        except FileNotFoundError:
            raise InputError("git is not installed") from None
        except subprocess.TimeoutExpired:
            raise InputError(f"git {args[0]} took longer than {TIMEOUT_SECONDS}s") from None

    def shallow_commits(self) -> set[str]:
        """Commits whose parents a shallow clone did not fetch (git's ``shallow`` file)."""
        where = Path(self.run("rev-parse", "--git-path", "shallow").strip())
        path = where if where.is_absolute() else self.repo / where
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return set()
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror}") from None
        return {line.strip() for line in text.splitlines() if line.strip()}

    def read(self, object_id: str) -> bytes | None:
        """Contents of an object (blob or commit), or None when it does not exist."""
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        stdin: IO[bytes] | None = self._batch.stdin
        stdout: IO[bytes] | None = self._batch.stdout
        assert stdin is not None and stdout is not None
        stdin.write(object_id.encode("ascii") + b"\n")
        stdin.flush()
        header = stdout.readline().decode("ascii", "replace").split()
        if len(header) < 3 or header[-1] == "missing":
            return None
        size = int(header[2])
        data = stdout.read(size)
        stdout.read(1)
        return data

    def read_many(self, object_ids: list[str]) -> dict[str, bytes | None]:
        """Contents of many objects with one round trip (a thread feeds ``cat-file``)."""
        unique = list(dict.fromkeys(object_ids))
        if not unique:
            return {}
        proc = subprocess.Popen(
            ["git", "-C", str(self.repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def feed() -> None:
            try:
                stdin.write("".join(f"{oid}\n" for oid in unique).encode("ascii"))
            finally:
                stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out: dict[str, bytes | None] = {}
        try:
            for oid in unique:
                header = proc.stdout.readline().decode("ascii", "replace").split()
                if len(header) < 3 or header[-1] == "missing":
                    out[oid] = None
                    continue
                out[oid] = proc.stdout.read(int(header[2]))
                proc.stdout.read(1)
        finally:
            writer.join(timeout=TIMEOUT_SECONDS)
            proc.stdout.close()
            proc.wait(timeout=TIMEOUT_SECONDS)
        return out

    def close(self) -> None:
        """Stop the ``cat-file`` process."""
        if self._batch is not None:
            if self._batch.stdin:
                self._batch.stdin.close()
            self._batch.wait(timeout=10)
            self._batch = None

    def __enter__(self) -> Git:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
