"""checker.parallel: work split into shares, forked map, paused garbage collection."""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest

from checker import parallel
from checker.parallel import Guard, can_fork, fork_map, no_cycle_collection, shares


@pytest.mark.parametrize(("weights", "parts"), [
    ([1] * 10, 2), ([5, 1, 1, 1, 1, 1], 2), ([1], 4), ([1, 1, 1], 5), ([0, 0, 7, 0], 2),
    ([3, 9, 1, 1, 8, 2, 2, 7], 3),
])
def test_shares_cover_every_index_once_in_order_without_empty_ranges(
        weights: list[int], parts: int) -> None:
    ranges = shares(weights, parts)
    assert 1 <= len(ranges) <= parts
    assert ranges[0][0] == 0 and ranges[-1][1] == len(weights)
    assert all(a < b for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))


def test_shares_balance_by_weight() -> None:
    assert shares([1] * 10, 2) == [(0, 5), (5, 10)]
    # one heavy item at the front gets a share of its own
    assert shares([10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 2) == [(0, 1), (1, 11)]
    assert shares([], 2) == []


def _pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


@pytest.mark.skipif(not can_fork(), reason="fork is not available on this platform")
def test_fork_map_keeps_order_and_runs_the_first_item_here() -> None:
    results = fork_map(_pid_and_square, [1, 2, 3])
    assert [r[1] for r in results] == [1, 4, 9]
    assert results[0][0] == os.getpid()
    assert all(pid != os.getpid() for pid, _ in results[1:])  # the others in forked workers


def test_fork_map_of_one_item_runs_here() -> None:
    assert fork_map(_pid_and_square, [5]) == [(os.getpid(), 25)]


def test_no_cycle_collection_pauses_and_restores_and_nests() -> None:
    assert gc.isenabled()
    with no_cycle_collection():
        assert not gc.isenabled()
        with no_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not turn it back on
    assert gc.isenabled()


def test_no_cycle_collection_restores_after_an_error() -> None:
    with pytest.raises(ValueError), no_cycle_collection():
        raise ValueError("boom")
    assert gc.isenabled()


def test_shares_give_the_first_range_its_lead() -> None:
    assert shares([1] * 10, 2, lead=1.5) == [(0, 6), (6, 10)]
    assert shares([1] * 9, 3, lead=1.0) == [(0, 3), (3, 6), (6, 9)]
    assert shares([2, 2, 2, 2], 2, lead=3.0) == [(0, 3), (3, 4)]


class _Squares:
    """A carried cache: what workers compute comes back to this process."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def mark(self) -> int:
        return len(self.done)

    def since(self, mark: int) -> list[Any]:
        return list(self.done.items())[mark:]

    def absorb(self, added: list[Any]) -> None:
        self.done.update(added)


@pytest.mark.skipif(not can_fork(), reason="workers are forked")
def test_a_carried_cache_keeps_what_workers_added(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _Squares()
    monkeypatch.setattr(parallel, "_CARRIED", [])
    parallel.carry(cache)
    parallel.carry(cache)  # registered once
    cache.done[1] = 1  # known before the fork: not sent back again

    def work(n: int, guard: Guard) -> int:
        del guard
        cache.done[n] = n * n
        return os.getpid()

    pids = parallel.run_guarded(work, [2, 3, 4])
    assert os.getpid() not in pids  # really computed in workers
    assert cache.done == {1: 1, 2: 4, 3: 9, 4: 16}


@pytest.mark.skipif(not can_fork(), reason="workers are forked")
def test_a_worker_that_raises_sends_nothing_back(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _Squares()
    monkeypatch.setattr(parallel, "_CARRIED", [cache])

    def work(n: int, guard: Guard) -> int:
        del guard
        cache.done[n] = n
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        parallel.run_guarded(work, [5])
    assert cache.done == {}


def test_rego_rewrites_are_a_carried_cache() -> None:
    from checker.policy import rewrite

    assert rewrite.REWRITTEN in parallel._CARRIED
    before = rewrite.REWRITTEN.mark()
    rewrite.REWRITTEN.absorb([(("package p\n", False, True), "package p\n")])
    assert rewrite.REWRITTEN.since(before)[-1][1] == "package p\n"
