"""Running the CPU-bound stages fast: parsing manifests, evaluating policies, rendering.

Both stages allocate millions of small objects that never form reference cycles (parsed
YAML is plain dicts, lists and strings), so Python's cyclic garbage collector only costs time
while they run: ``no_cycle_collection`` pauses it (it measured 30-40% of parsing time).

Both stages split their work into contiguous shares, one per CPU, and run them in forked
processes (a fork shares the parent's loaded policies and resources without copying them);
results come back in input order, so the output is the same as a serial run. Where ``fork``
does not exist (Windows, macOS defaults aside) everything runs in this process.

Every wait on a worker is bounded (``Limits``). ``run_guarded`` runs each item in a worker
that announces its steps through a shared mapping (``Guard``); a step past its time is
killed, a worker's address space is capped, and a worker that dies inside a step is reported
as a ``Failure`` naming the step, so that the caller can go around it (policy evaluation does).
``fork_map`` is built on it: a worker that dies, or outlives the overall deadline, raises
``WorkerError`` instead of leaving the run waiting.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import gc
import mmap
import multiprocessing
import os
import pickle
import resource
import selectors
import signal
import struct
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from checker.errors import CheckerError

if TYPE_CHECKING:
    from checker.model import Report
    from checker.report import Format

T = TypeVar("T")
R = TypeVar("R")

@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block (reference counting still frees
    memory); restores the previous state, so blocks may nest.

    On the way out, the objects made inside are moved to the collector's permanent generation
    (``gc.freeze``): otherwise the first allocation after re-enabling starts a full collection
    that walks every one of them, which cost seconds after loading 10,000 objects. Frozen
    objects are still freed by reference counting; only cycles among them are not collected.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Whether worker processes can be forked here."""
    return "fork" in multiprocessing.get_all_start_methods()


def shares(weights: Sequence[int], parts: int, lead: float = 1.0) -> list[tuple[int, int]]:
    """Split indexes 0..len(weights) into at most ``parts`` contiguous (start, end) ranges
    of about equal total weight, the first ``lead`` times the others; no range is empty.

    ``fork_map`` runs the first range in the calling process, which sends nothing back:
    a ``lead`` above 1 gives it the work the others spend on returning their results.
    """
    total = sum(weights)
    unit = total / (lead + parts - 1) if parts > 0 else 0
    out: list[tuple[int, int]] = []
    start, acc = 0, 0
    for index, weight in enumerate(weights):
        acc += weight
        remaining = parts - len(out) - 1
        if (remaining > 0 and acc >= unit * (lead + len(out)) and index + 1 < len(weights)):
            out.append((start, index + 1))
            start = index + 1
    if start < len(weights):
        out.append((start, len(weights)))
    return out


@dataclass(frozen=True)
class Limits:
    """Bounds on forked work: one evaluation step, a worker's memory, and any wait at all."""

    seconds: float = 5.0        # one step (``Guard.begin`` .. ``Guard.end``) in a worker
    memory_mb: int = 2048       # address space a worker may add to what it inherits
    wait_seconds: float = 1800.0  # a worker as a whole, from fork to its last byte


DEFAULT_LIMITS = Limits()
_POLL = 0.05  # seconds between looks at the workers' progress
_IDLE, _BUSY = 0, 1


class WorkerError(CheckerError):
    """A worker process died, or overran its deadline, outside a step it could be blamed on."""


@dataclass(frozen=True)
class Failure:
    """A worker that was killed or died inside a step: ``key`` is what ``Guard.begin`` named."""

    key: tuple[int, int]
    reason: str


class Guard:
    """A worker's progress, shared with its supervisor through an anonymous shared mapping.

    ``begin(a, b)`` before a step and ``end()`` after it; the supervisor kills a worker whose
    step runs longer than ``Limits.seconds`` and reports the step it died in as a Failure.
    Outside a forked worker (``Guard()``), both do nothing.
    """

    _LAYOUT = struct.Struct("qqqq")  # state, a, b, sequence number

    def __init__(self, shared: mmap.mmap | None = None) -> None:
        self._shared = shared
        self._seq = 0

    def begin(self, a: int, b: int) -> None:
        """A step named (a, b) starts."""
        if self._shared is not None:
            self._seq += 1
            self._LAYOUT.pack_into(self._shared, 0, _BUSY, a, b, self._seq)

    def end(self) -> None:
        """The current step is over."""
        if self._shared is not None:
            self._LAYOUT.pack_into(self._shared, 0, _IDLE, 0, 0, self._seq)

    def read(self) -> tuple[int, int, int, int]:
        """(state, a, b, sequence number), as the worker last wrote them."""
        assert self._shared is not None
        state, a, b, seq = self._LAYOUT.unpack_from(self._shared, 0)
        return state, a, b, seq


def _address_space() -> int:
    """Bytes of address space this process has mapped (Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0


GO_RESERVE_MB = 4096  # address space Go's runtime reserves (not uses) when OPA starts in a worker


def _data_size() -> int:
    """Bytes of this process's data (heap and private anonymous memory; Linux ``VmData``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    return 0


def _cap_memory(memory_mb: int) -> None:
    """Cap what a worker may allocate at ``memory_mb`` above what it inherits.

    The memory a worker uses is capped (``RLIMIT_DATA``: heap and private anonymous mappings,
    Linux 4.7 and later); its address space is capped too, with room for what Go's runtime
    reserves without using (real OPA starts in the worker; under an address-space cap alone
    it could not start below about 1 GiB).
    """
    extra = memory_mb * 1024 * 1024
    for kind, used, room in ((resource.RLIMIT_DATA, _data_size(), 0),
                             (resource.RLIMIT_AS, _address_space(), GO_RESERVE_MB << 20)):
        if used <= 0:
            continue
        limit = used + extra + room
        _soft, hard = resource.getrlimit(kind)
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(kind, (limit, hard))


class WorkerCache(Protocol):
    """A process-wide cache that forked workers fill and the parent keeps (see ``carry``)."""

    def mark(self) -> int:
        """A position: what ``since`` is counted from."""

    def since(self, mark: int) -> list[Any]:
        """The entries added after ``mark``, picklable."""

    def absorb(self, added: list[Any]) -> None:
        """Keep entries a worker added."""


_CARRIED: list[WorkerCache] = []


def carry(cache: WorkerCache) -> None:
    """Send back what ``run_guarded``'s workers add to ``cache`` with their results.

    A worker is a fork: whatever it computes into a module-level cache dies with it. A cache
    registered here comes back with each worker's result and is kept in this process, so the
    next run's workers start with it. Callers of ``run_guarded`` need not know about it.
    """
    if cache not in _CARRIED:
        _CARRIED.append(cache)


def _child(func: Callable[[Any, Guard], Any], item: Any, guard: Guard, out: int,
           quiet: bool, memory_mb: int) -> None:
    """Run in the forked worker: never returns."""
    code = 0
    try:
        if quiet:  # whatever native code writes goes nowhere (see checker.policy.limits)
            faulthandler.disable()  # it writes to a descriptor of its own
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
        if memory_mb > 0:
            _cap_memory(memory_mb)
        marks = [cache.mark() for cache in _CARRIED]
        try:
            value = func(item, guard)
            added = [cache.since(m) for cache, m in zip(_CARRIED, marks, strict=True)]
            payload = pickle.dumps(("ok", value, added), pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps(("memory", None, []))
        except BaseException as err:  # re-raised in the parent
            try:
                payload = pickle.dumps(("raise", err, []), pickle.HIGHEST_PROTOCOL)
            except Exception:  # one that does not pickle
                payload = pickle.dumps(("raise", RuntimeError(
                    "".join(traceback.format_exception(err))), []))
        view = memoryview(payload)
        while view:
            view = view[os.write(out, view[:1 << 20]):]
    except BaseException:  # nothing may escape a forked child
        code = 70
    finally:
        os._exit(code)


@dataclass
class _Worker:
    pid: int
    fd: int
    guard: Guard
    chunks: list[bytes] = field(default_factory=list)
    eof: bool = False
    status: int | None = None
    seq: int = -1
    since: float = 0.0
    killed: str = ""


def _death(status: int, limits: Limits) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == signal.SIGSEGV:
            return f"crashed ({name}; deep recursion overflows the stack)"
        if number == signal.SIGABRT:
            return (f"aborted ({name}; most often memory over the limit of "
                    f"{limits.memory_mb} MiB)")
        return f"was killed ({name})"
    code = os.WEXITSTATUS(status)
    if code == 2:  # how Go's runtime ends on a fatal error, "out of memory" among them
        return (f"exited with status 2 before sending its result (Go's runtime, when its "
                f"memory is over the limit of {limits.memory_mb} MiB or it fails otherwise)")
    return f"exited with status {code} before sending its result"


def run_guarded(func: Callable[[T, Guard], R], items: Sequence[T],
                limits: Limits = DEFAULT_LIMITS, quiet: bool = False,
                meanwhile: Callable[[], Any] | None = None) -> list[R | Failure]:
    """``[func(item, guard) for item in items]``, each item in a forked worker of its own.

    Every wait is bounded: a step (``Guard.begin``) running longer than ``limits.seconds`` is
    killed, a worker's address space is capped at ``limits.memory_mb`` above what it inherits,
    and no worker may run longer than ``limits.wait_seconds``. A worker that dies or is killed
    inside a step gives a Failure naming the step; one that dies outside any step raises
    WorkerError, as does the overall deadline. An exception in ``func`` is raised here.
    ``quiet`` sends the workers' stdout and stderr to /dev/null. ``meanwhile`` runs here once
    the workers are started (the deadlines count from its end). Without ``fork`` the items run
    in this process, unbounded.
    """
    if not can_fork():
        if meanwhile is not None:
            meanwhile()
        return [func(item, Guard()) for item in items]
    workers: list[_Worker] = []
    selector = selectors.DefaultSelector()
    try:
        for item in items:
            shared = mmap.mmap(-1, Guard._LAYOUT.size)
            guard = Guard(shared)
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                os.close(read_end)
                _child(func, item, guard, write_end, quiet, limits.memory_mb)
            os.close(write_end)
            os.set_blocking(read_end, False)
            worker = _Worker(pid, read_end, guard, since=time.monotonic())
            workers.append(worker)
            selector.register(read_end, selectors.EVENT_READ, worker)
        if meanwhile is not None:
            meanwhile()
            for worker in workers:
                worker.since = time.monotonic()
        deadline = time.monotonic() + limits.wait_seconds
        while any(w.status is None for w in workers):
            # all output read: the workers are exiting, look again soon
            wait = _POLL if any(not w.eof for w in workers) else _POLL / 50
            for key, _events in selector.select(wait):
                worker = key.data
                while True:
                    try:
                        chunk = os.read(worker.fd, 1 << 20)
                    except BlockingIOError:
                        break
                    if not chunk:
                        worker.eof = True
                        selector.unregister(worker.fd)
                        break
                    worker.chunks.append(chunk)
            now = time.monotonic()
            for worker in workers:
                if worker.status is not None:
                    continue
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
                if pid:
                    if not worker.eof:  # the rest of its output is in the pipe
                        _drain(worker, selector)
                    worker.status = status
                    continue
                state, _a, _b, seq = worker.guard.read()
                if seq != worker.seq:
                    worker.seq, worker.since = seq, now
                elif state == _BUSY and now - worker.since > limits.seconds:
                    worker.killed = f"ran past the time limit of {limits.seconds:g} s"
                    _kill(worker.pid)
            if now > deadline:
                raise WorkerError(f"a worker process ran past the deadline of "
                                  f"{limits.wait_seconds:g} s and was stopped")
        return [_outcome(worker, limits) for worker in workers]
    finally:
        for worker in workers:
            if worker.status is None:
                _kill(worker.pid)
                os.waitpid(worker.pid, 0)
            os.close(worker.fd)
        selector.close()


def _drain(worker: _Worker, selector: selectors.BaseSelector) -> None:
    while True:
        try:
            chunk = os.read(worker.fd, 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            worker.eof = True
            selector.unregister(worker.fd)
            return
        worker.chunks.append(chunk)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _outcome(worker: _Worker, limits: Limits) -> Any:
    assert worker.status is not None
    state, a, b, _seq = worker.guard.read()
    data = b"".join(worker.chunks)
    if worker.status == 0 and not worker.killed and data:
        kind, value, added = pickle.loads(data)
        if kind == "ok":
            for cache, entries in zip(_CARRIED, added, strict=False):
                cache.absorb(entries)
            return value
        if kind == "raise":
            raise value
        reason = f"ran out of memory (limit {limits.memory_mb} MiB)"
    elif worker.killed:
        reason = worker.killed
    else:
        reason = _death(worker.status, limits)
    if state == _BUSY:
        return Failure((a, b), reason)
    raise WorkerError(f"a worker process {reason}")


def _run_share(item: Callable[[], Any], guard: Guard) -> Any:
    del guard
    return item()


def fork_map(func: Callable[[T], R], items: Sequence[T],
             limits: Limits = DEFAULT_LIMITS) -> list[R]:
    """``[func(item) for item in items]``: the first item in this process, each other item in a
    forked process of its own, all at the same time.

    ``func`` and ``items`` reach the workers through the fork, not through pickling; only the
    workers' results are pickled back (the first item's result never is). A worker that dies,
    or runs past ``limits.wait_seconds``, raises WorkerError: no wait is unbounded.
    """
    if len(items) <= 1 or not can_fork():
        return [func(item) for item in items]
    first: list[R] = []
    others = run_guarded(_run_share, [functools.partial(func, item) for item in items[1:]],
                         limits, meanwhile=lambda: first.append(func(items[0])))
    return [*first, *(r for r in others if not isinstance(r, Failure))]


# -- rendering ------------------------------------------------------------------------------

PARALLEL_FINDINGS = 5_000  # below this many findings, forking costs more than it saves


def split(formats: Sequence[str], parts: int, cost: Callable[[str], int]) -> list[list[str]]:
    """``formats`` in at most ``parts`` groups of about equal ``cost`` (largest first)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(parts, len(formats))))]
    loads = [0] * len(groups)
    for fmt in sorted(formats, key=lambda f: (-cost(f), f)):
        least = loads.index(min(loads))
        groups[least].append(fmt)
        loads[least] += cost(fmt)
    return [g for g in groups if g]


def render_all(report: Report, formats: Iterable[str],
               registry: Mapping[str, Format]) -> dict[str, str]:
    """Each of ``formats`` rendered once by its ``registry`` entry (the caller passes
    ``checker.report.FORMATS``; this module imports no renderer): with the cyclic
    collector paused (renderers allocate an object or more per finding and make no cycles; its
    passes took up to half the rendering time of a large report), and a large report's formats
    over several processes at once. Renderers are pure, so a forked render gives the same text.
    """
    todo = sorted(set(formats))
    parts = available_cpus() if len(report.findings) >= PARALLEL_FINDINGS else 1
    groups = split(todo, parts, lambda f: registry[f].cost)

    def render(group: list[str]) -> dict[str, str]:
        return {fmt: registry[fmt].render(report) for fmt in group}

    done: dict[str, str] = {}
    with no_cycle_collection():
        if len(groups) <= 1:
            return render(todo)
        for part in fork_map(render, groups):
            done.update(part)
    return done
