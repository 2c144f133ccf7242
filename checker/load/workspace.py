"""The repository is a boundary: read files from it, and write reports, without leaving it.

Everything in a pull request is the author's, symlinks included. A committed symlink may point
at a runner's file (a kubeconfig), at a device (``/dev/zero`` never ends), or at a folder outside
the checkout; a committed FIFO would block a reader forever. So every file read from the
repository goes through ``read_bytes``:

- a path that lies inside the root must resolve inside the root (symlinks within the
  repository are followed, as kubectl follows them; one that leaves it is refused, naming
  the link and where it points);
- only regular files are opened, after a ``stat`` (no device or FIFO is ever opened), and the
  opened descriptor is checked again (``fstat``; on Linux its real path through
  ``/proc/self/fd``) so that a swap between check and open cannot get past it;
- the size limit is checked before reading, and the read itself stops at the limit.

Paths outside the root were given by the trusted caller (the command line, the workflow) and
are only held to the regular-file and size rules.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from checker.errors import CheckerError

_HAVE_PROC = Path("/proc/self/fd").is_dir()
_OPEN_FOLLOWING = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS = _OPEN_FOLLOWING | getattr(os, "O_NOFOLLOW", 0)


class Refused(CheckerError):
    """A file that is not read: it leaves the repository, is not a regular file, or is too big.

    ``kind`` is ``symlink``, ``special-file`` or ``too-large``; the message says what and why.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def lexically_inside(path: Path, root: Path) -> bool:
    """``path`` names a place inside ``root`` before any symlink is followed."""
    where = os.path.abspath(path)
    return _within(where, os.path.abspath(root)) or _within(where, _real(os.path.abspath(root)))


def resolves_inside(path: Path, root: Path) -> bool:
    """``path``, with every symlink followed, is ``root`` or lies below it."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def escapes(path: Path, root: Path) -> str | None:
    """Where ``path`` really points if it lies inside ``root`` but resolves outside it."""
    if not lexically_inside(path, root):
        return None
    real = os.path.realpath(path)
    return None if _within(real, os.path.realpath(root)) else real


def _display(path: Path, root: Path | None) -> str:
    if root is not None and lexically_inside(path, root):
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
    return str(path)


def _refuse_symlink(path: Path, root: Path | None, target: str) -> Refused:
    return Refused("symlink", f"{_display(path, root)} is a symlink to {target}, outside the "
                              "repository; it was not followed")


def read_bytes(path: Path, root: Path | None, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``stat`` first, so a device or FIFO is never opened; then the file is opened and checked
    again through its descriptor (``fstat``, and on Linux its real path in ``/proc/self/fd``)
    before a byte is read, so a swap between the two cannot get past. Without ``/proc`` the
    path is resolved first and opened with ``O_NOFOLLOW``. Raises ``Refused`` (see the class)
    and ``OSError`` for files that cannot be read.
    """
    inside = root is not None and lexically_inside(path, root)
    top = _real(os.path.abspath(root)) if root is not None else ""
    target: str | Path = path
    if inside and not _HAVE_PROC:
        real = os.path.realpath(path)
        if not _within(real, top):
            raise _refuse_symlink(path, root, real)
        target = real
    info = os.stat(target)
    if not stat.S_ISREG(info.st_mode):
        if inside and not _within(os.path.realpath(path), top):
            raise _refuse_symlink(path, root, os.path.realpath(path))
        raise Refused("special-file", f"{_display(path, root)} is not a regular file "
                                      f"({_kind(info.st_mode)}); it was not read")
    fd = os.open(target, _OPEN_FLAGS if target is not path else _OPEN_FOLLOWING)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped since the stat above
            raise Refused("special-file", f"{_display(path, root)} is not a regular file; "
                                          "it was not read")
        if inside and _HAVE_PROC:
            now = os.readlink(f"/proc/self/fd/{fd}")
            if not _within(now, top):
                raise _refuse_symlink(path, root, now)
        if opened.st_size > limit:
            raise _too_large(path, root, limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _too_large(path, root, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=64)
def _real(root: str) -> str:
    """``realpath`` of a root, once per run (every file asks for it)."""
    return os.path.realpath(root)


def _too_large(path: Path, root: Path | None, limit: int) -> Refused:
    return Refused("too-large", f"{_display(path, root)} is larger than "
                                f"{limit // (1024 * 1024)} MiB; it was not read")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def output_path(path: Path, root: Path) -> Path:
    """Where a report file may be written: ``path`` itself, resolved.

    A path inside the repository must stay inside it after symlinks are followed (a committed
    ``report.sarif -> ~/.bashrc`` must not be overwritten), and an existing target must be a
    regular file. Raises ``Refused`` otherwise.
    """
    target = escapes(path, root)
    if target is not None:
        raise Refused("symlink", f"output file {path} resolves to {target}, outside the "
                                 f"repository root {root}; refusing to write it")
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_file():
        raise Refused("special-file", f"output file {path} exists and is not a regular file")
    return real


def write_text(path: Path, text: str, root: Path) -> None:
    """Write a report to ``path`` after ``output_path`` allowed it (no symlink is followed)."""
    real = output_path(path, root)
    real.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(real, flags, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("special-file", f"output file {path} is not a regular file")
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
