"""Running the CPU-bound stages fast: parsing manifests and evaluating policies.

Both stages allocate millions of small objects that never form reference cycles (parsed
YAML is plain dicts, lists and strings), so Python's cyclic garbage collector only costs time
while they run: ``no_cycle_collection`` pauses it (it measured 30-40% of parsing time).

Both stages split their work into contiguous shares, one per CPU, and run them in forked
processes (a fork shares the parent's loaded policies and resources without copying them);
results come back in input order, so the output is the same as a serial run. Where ``fork``
does not exist (Windows, macOS defaults aside) everything runs in this process.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_TASK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


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


def _run_share(index: int) -> Any:
    assert _TASK is not None
    func, items = _TASK
    return func(items[index])


def fork_map(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[func(item) for item in items]``: the first item in this process, each other item in a
    forked process of its own, all at the same time.

    ``func`` and ``items`` reach the workers through the fork, not through pickling; only the
    workers' results are pickled back (the first item's result never is).
    """
    if len(items) <= 1 or not can_fork():
        return [func(item) for item in items]
    global _TASK
    _TASK = (func, items)
    try:
        with multiprocessing.get_context("fork").Pool(len(items) - 1) as pool:
            others = pool.map_async(_run_share, range(1, len(items)))
            first = func(items[0])
            return [first, *others.get()]
    finally:
        _TASK = None
