"""Base results by content digest: entries round-trip, and nothing else is read as one."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from checker.basecache import BaseCache, cache_key, dump, load
from checker.errors import ConfigError
from checker.model import (
    Control,
    Finding,
    ObjectRef,
    Report,
    Rule,
    Severity,
    SourceLocation,
    Suppression,
)
from tests.accept.test_four_eyes import git

FINDING = Finding(
    "pss-privileged", "policy", Severity.ERROR, "privileged container",
    SourceLocation("apps/web.yaml", 11, 9, 11, 23), resource="Pod apps/web",
    field_path=("spec", "containers", 0, "securityContext", "privileged"),
    controls=(Control("pss", "baseline", "Privileged"),), pack="pss-baseline", cluster="prod",
    suppression=Suppression("file", "reviewed", "team", "2027-01-01", "a.yaml:3", "lead", "T-1"),
    details={"constraint": "K8sPSSPrivileged/x", "n": 2},
    ref=ObjectRef.of("v1", "Pod", "apps", "web", "prod"))
REPORT = Report(findings=(FINDING, replace(FINDING, suppression=None, ref=None)),
                rules={"pss-privileged": Rule("pss-privileged", "Privileged", Severity.ERROR,
                                              pack="pss-baseline")},
                resources_checked=3, files_checked=2, packs=("pss-baseline",),
                clusters=("prod",), tool_version="1.0", engines=("regorus",))


def test_entry_round_trips() -> None:
    back = load(dump(REPORT, "k"), "k")
    assert back is not None
    assert back.findings == REPORT.findings
    assert [f.identity for f in back.findings] == [f.identity for f in REPORT.findings]
    assert back.findings[0].details == FINDING.details
    assert back.rules == REPORT.rules
    assert (back.resources_checked, back.files_checked, back.packs, back.clusters) == (
        3, 2, ("pss-baseline",), ("prod",))


@pytest.mark.parametrize("text", [
    "", "not json", "[]", '{"schema": 1}', dump(REPORT, "other"),
    dump(REPORT, "k").replace('"schema":1', '"schema":0'),
    dump(REPORT, "k").replace('"severity":"error"', '"severity":"fatal"'),
])
def test_anything_but_an_entry_of_the_key_is_not_read(text: str) -> None:
    assert load(text, "k") is None


def test_key_depends_on_tree_and_settings() -> None:
    a = cache_key("t1", {"paths": ["."]})
    assert a == cache_key("t1", {"paths": ["."]})
    assert a != cache_key("t2", {"paths": ["."]})
    assert a != cache_key("t1", {"paths": ["apps"]})


def test_cache_stores_and_reads(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    cache = BaseCache(tmp_path / "cache", repo)
    assert cache.get("k") is None
    cache.put("k", REPORT)
    got = cache.get("k")
    assert got is not None and got.findings == REPORT.findings
    assert (cache.hits, cache.misses) == (1, 1)
    # a base with tool errors is not kept: it is evaluated again next time
    cache.put("e", replace(REPORT, errors=("opa crashed",)))
    assert cache.get("e") is None


def test_symlinked_entry_is_not_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    cache = BaseCache(tmp_path / "cache", repo)
    cache.put("real", REPORT)
    os.symlink(cache.folder / "base-real.json", cache.folder / "base-k.json")
    assert cache.get("k") is None


def test_cache_inside_the_repository_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    with pytest.raises(ConfigError, match="inside the repository"):
        BaseCache(repo / ".cache", repo)
    with pytest.raises(ConfigError, match="inside the repository"):
        BaseCache(repo / "other", repo / "sub")  # inside the git top, outside the root
    BaseCache(tmp_path / "cache", repo)
