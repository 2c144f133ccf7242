"""A fleet on a matrix: cluster selection, shards, the matrix, and merge == an unsharded run.

The merge tests run the real CLI: ``scan --shard I/N --json`` per shard, ``merge`` of those
files, and compare every format byte for byte with one unsharded ``scan`` of the same
repository: the multi-cluster example and a synthetic fleet built to catch what adds up
differently in parts (files two clusters share, a broken shared file, a rule whose severity a
cluster overrides, acceptances used in one shard and unused in another, a cluster without
objects and one without policies).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker import fleet
from checker.cli import cli
from checker.errors import ConfigError
from checker.model import ClusterPart, Report, Shard
from checker.report import FILE_FORMATS, FORMATS
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "multi-cluster"
TODAY = "2026-11-27"


# --- selection and shards ------------------------------------------------------------------

def test_shards_deal_sorted_names_round_robin() -> None:
    names = ["zeta", "alpha", "mid", "beta", "omega"]
    assert fleet.assign(names, 2) == [("alpha", "mid", "zeta"), ("beta", "omega")]
    assert fleet.assign(reversed(names), 2) == fleet.assign(names, 2)  # not the config order
    parts = fleet.assign([f"c{i:03}" for i in range(1000)], 256)
    assert sorted(n for p in parts for n in p) == [f"c{i:03}" for i in range(1000)]
    assert {len(p) for p in parts} == {3, 4}  # sizes differ by at most one


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("3/8", (3, 8)),
                                                (" 2/2 ", (2, 2))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert fleet.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "1/0", "a/b", "-1/2", "1/2/3", ""])
def test_a_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected I/N"):
        fleet.parse_shard(text)


def test_select_keeps_config_order_and_names_what_is_known() -> None:
    configured = ("zeta", "alpha", "beta")
    assert fleet.select(configured, ("beta", "zeta")).names == ("zeta", "beta")
    assert fleet.select(configured, (), (1, 2)) == fleet.Selection(("zeta", "alpha"), 1, 2)
    assert fleet.select(configured, ("zeta", "beta"), (1, 2)).names == ("zeta",)
    with pytest.raises(ConfigError, match=r"unknown cluster 'prod' \(known: zeta, alpha, beta\)"):
        fleet.select(configured, ("prod",))
    with pytest.raises(ConfigError, match=r"there are 3 clusters .* at most 3 shards"):
        fleet.select(configured, (), (4, 4))
    with pytest.raises(ConfigError, match="holds none of the clusters named by --cluster"):
        fleet.select(configured, ("beta",), (1, 2))
    with pytest.raises(ConfigError, match="none is configured"):
        fleet.select(("",), ("x",))


def test_matrix_is_one_job_per_cluster_up_to_256_then_shards() -> None:
    few = fleet.matrix(["b", "a", "c"])
    assert few == {"include": [{"shard": "1/3", "clusters": "a"}, {"shard": "2/3",
                                                                    "clusters": "b"},
                               {"shard": "3/3", "clusters": "c"}]}
    many = fleet.matrix([f"c{i}" for i in range(600)])
    assert len(many["include"]) == 256
    assert sum(len(job["clusters"].split()) for job in many["include"]) == 600
    assert fleet.matrix(["a", "b", "c"], max_jobs=2)["include"][0] == {
        "shard": "1/2", "clusters": "a c"}
    assert fleet.matrix([""]) == {"include": [{"shard": "", "clusters": ""}]}
    with pytest.raises(ConfigError, match="1 to 256"):
        fleet.matrix(["a"], max_jobs=257)


def test_matrix_command_prints_json_for_fromjson(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["matrix", str(EXAMPLE), "--root", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"include": [
        {"shard": "1/2", "clusters": "production"}, {"shard": "2/2", "clusters": "staging"}]}
    assert result.stdout.count("\n") == 1  # one line: fits a $GITHUB_OUTPUT line


def test_scan_of_an_unknown_cluster_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--cluster",
                                 "prod"])
    assert result.exit_code == 2
    assert "unknown cluster 'prod' (known: staging, production)" in result.stderr
    result = runner.invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--shard",
                                 "1/3"])
    assert result.exit_code == 2 and "at most 2 shards" in result.stderr


def test_a_scan_of_one_cluster_checks_only_it(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--today", TODAY,
                                 "--cluster", "staging", "--format", "json",
                                 "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["clusters"] == ["staging"]
    assert {f["cluster"] for f in data["findings"]} <= {"staging", ""}
    assert data["shard"]["clusters"] == ["staging", "production"]
    assert [p["name"] for p in data["shard"]["parts"]] == ["staging"]
    assert data["settings"]["groupBy"] == "cluster"  # as the whole fleet is grouped
    assert (data["shard"]["index"], data["shard"]["count"]) == (0, 0)


# --- merge == unsharded ----------------------------------------------------------------------

def _outputs(runner: CliRunner, args: list[str], out: Path, code: int | None = None,
             ) -> dict[str, str]:
    """Every file format of one CLI call (plus the accepted SARIF and stdout's text)."""
    out.mkdir(parents=True)
    files = {fmt: out / f"out.{FORMATS[fmt].suffix}" for fmt in FILE_FORMATS}
    flags = [a for fmt, path in files.items() for a in (f"--{fmt}", str(path))]
    result = runner.invoke(cli, [*args, *flags, "--sarif-accepted", str(out / "acc.sarif"),
                                 "--format", "text"])
    assert result.exit_code in ((0, 1) if code is None else (code,)), result.output
    texts = {fmt: path.read_text(encoding="utf-8") for fmt, path in files.items()}
    return {**texts, "accepted": (out / "acc.sarif").read_text(encoding="utf-8"),
            "text": result.stdout, "exit": str(result.exit_code)}


def _sharded(runner: CliRunner, scan: list[str], count: int, tmp: Path,
             fail_on: str = "error") -> dict[str, str]:
    """Scan each of ``count`` shards (with --fail-on never, as the example workflow does),
    then merge their JSON reports with ``fail_on``."""
    reports = []
    for i in range(1, count + 1):
        path = tmp / f"shard-{i}.json"
        result = runner.invoke(cli, [*scan, "--shard", f"{i}/{count}", "--fail-on", "never",
                                     "--json", str(path)])
        assert result.exit_code in (0, 1), result.output  # 1: an unreadable file, always
        reports.append(str(path))
    return _outputs(runner, ["merge", *reversed(reports), "--fail-on", fail_on, "--root",
                             str(tmp)], tmp / "merged")


def test_merged_shards_of_the_multi_cluster_example_are_the_unsharded_run(
        tmp_path: Path, runner: CliRunner) -> None:
    scan = ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--today", TODAY]
    whole = _outputs(runner, [*scan, "--fail-on", "error"], tmp_path / "whole", code=1)
    merged = _sharded(runner, scan, 2, tmp_path)
    assert merged == whole


def _fleet_repo(root: Path) -> Path:
    """A fleet of 7 clusters whose reports add up differently in parts (see module doc)."""
    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")

    put(".gitops-checker.yaml", """
        version: 1
        defaults:
          packs: [pss-baseline, best-practice]
        clusters:
          - name: zeta
            paths: [shared, apps/zeta]
            overrides:
              image-tag: {severity: warning}
          - name: alpha
            paths: [shared, apps/alpha]
            packs: [pss-baseline]
          - name: mid-3
            paths: [apps/mid-3]
          - name: beta
            paths: [shared, apps/beta]
            overrides:
              image-tag: {severity: note}
          - name: omega
            paths: [shared/base.yaml, apps/omega]
          - name: gamma
            paths: [apps/gamma]
            packs: [none]
          - name: empty
            paths: [apps/empty]
        acceptances:
          paths: [acceptances]
          warnDays: 14
        """)
    put("shared/base.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shared
          labels: {owner: platform}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: common
          namespace: shared
          labels: {owner: platform}
        spec:
          selector: {matchLabels: {app: common}}
          template:
            metadata:
              labels: {app: common}
              annotations:
                gitops-checker.io/accept.image-tag: moving tag on purpose in the shared base
                gitops-checker.io/accept-owner: platform
            spec:
              containers:
                - name: common
                  image: registry.example.invalid/common:latest
                  securityContext: {privileged: true}
        """)
    put("shared/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n")
    for name in ("zeta", "alpha", "mid-3", "beta", "omega", "gamma"):
        put(f"apps/{name}/app.yaml", f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: app-{name}
              namespace: team-{name}
            spec:
              selector: {{matchLabels: {{app: {name}}}}}
              template:
                metadata:
                  labels: {{app: {name}}}
                spec:
                  hostNetwork: {"true" if name in ("beta", "mid-3") else "false"}
                  containers:
                    - name: main
                      image: registry.example.invalid/{name}:latest
            """)
    (root / "apps" / "empty").mkdir(parents=True)
    put("acceptances/fleet.yaml", """
        acceptances:
          - id: RA-BETA
            policy: pss-host-namespaces
            resources:
              - cluster: beta
                namespace: team-beta
                kind: Deployment
                name: app-beta
            justification: beta's node agent needs the host network.
            owner: team-beta
            ticket: SEC-7
            expires: "2026-12-01"
          - id: RA-GONE
            policy: pss-privileged
            resources:
              - namespace: nowhere
                kind: Deployment
                name: gone
            justification: removed long ago.
            owner: team-old
            approver: ciso
            expires: "2027-12-31"
        """)
    return root


@pytest.fixture(scope="module")
def fleet_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fleet_repo(tmp_path_factory.mktemp("fleet"))


@pytest.fixture(scope="module")
def fleet_whole(fleet_repo: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, str]:
    scan = ["scan", str(fleet_repo), "--root", str(fleet_repo), "--today", TODAY]
    return _outputs(CliRunner(), [*scan, "--fail-on", "warning"],
                    tmp_path_factory.mktemp("whole") / "out")


def test_the_synthetic_fleet_has_what_it_is_built_for(fleet_whole: dict[str, str]) -> None:
    data = json.loads(fleet_whole["json"])
    rules = {f["rule"] for f in data["findings"]}
    assert {"input.parse-error", "input.nothing-checked", "input.no-policies",
            "acceptance.stale", "acceptance.expiring", "image-tag"} <= rules
    stale = [f["details"]["acceptance"] for f in data["findings"]
             if f["rule"] == "acceptance.stale"]
    assert stale == ["RA-GONE"]  # RA-BETA and the shared annotation are used somewhere
    assert {f["cluster"] for f in data["accepted"]} >= {"beta", "zeta"}
    assert [r["severity"] for r in data["rules"] if r["id"] == "image-tag"] == ["error"]
    assert data["summary"]["files"] == 8
    assert fleet_whole["exit"] == "1"


@pytest.mark.parametrize("count", [3, pytest.param(2, marks=pytest.mark.slow),
                                   pytest.param(7, marks=pytest.mark.slow)])
def test_merged_shards_of_a_synthetic_fleet_are_the_unsharded_run(
        count: int, fleet_repo: Path, fleet_whole: dict[str, str], tmp_path: Path,
        runner: CliRunner) -> None:
    scan = ["scan", str(fleet_repo), "--root", str(fleet_repo), "--today", TODAY]
    merged = _sharded(runner, scan, count, tmp_path, fail_on="warning")
    for name in fleet_whole:
        assert merged[name] == fleet_whole[name], name


def test_a_shard_alone_reports_stale_what_another_shard_used(fleet_repo: Path,
                                                             runner: CliRunner) -> None:
    """Why merge needs ``acceptancesUsed``: alone, the shard without beta calls RA-BETA stale."""
    result = runner.invoke(cli, ["scan", str(fleet_repo), "--root", str(fleet_repo), "--today",
                                 TODAY, "--cluster", "zeta", "--format", "json", "--fail-on",
                                 "never"])
    data = json.loads(result.stdout)
    stale = {f["details"]["acceptance"] for f in data["findings"]
             if f["rule"] == "acceptance.stale"}
    assert "RA-BETA" in stale


# --- merge refuses what is not one fleet -------------------------------------------------------

@pytest.fixture(scope="module")
def example_shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("shards")
    runner = CliRunner()
    paths = []
    for i in (1, 2):
        path = out / f"shard-{i}.json"
        result = runner.invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--today",
                                     TODAY, "--shard", f"{i}/2", "--fail-on", "never",
                                     "--json", str(path)])
        assert result.exit_code in (0, 1), result.output
        paths.append(path)
    return paths


def test_merge_of_a_missing_shard_is_an_error_not_a_pass(example_shards: list[Path],
                                                          runner: CliRunner) -> None:
    result = runner.invoke(cli, ["merge", str(example_shards[0])])
    assert result.exit_code == 2
    assert "no shard report checked the cluster staging: a shard's report is missing" in (
        result.stderr)


def test_merge_of_a_shard_given_twice_is_an_error(example_shards: list[Path], tmp_path: Path,
                                                  runner: CliRunner) -> None:
    copy = tmp_path / "again.json"
    copy.write_bytes(example_shards[0].read_bytes())
    result = runner.invoke(cli, ["merge", *map(str, example_shards), str(copy)])
    assert result.exit_code == 2 and "is in" in result.stderr and "give each shard" in (
        result.stderr)


def test_merge_refuses_an_unsharded_report_and_broken_files(
        example_shards: list[Path], tmp_path: Path, runner: CliRunner) -> None:
    whole = tmp_path / "whole.json"
    runner.invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--json", str(whole),
                        "--fail-on", "never"])
    result = runner.invoke(cli, ["merge", str(whole), str(example_shards[0])])
    assert result.exit_code == 2 and f"{whole}: not the report of a shard" in result.stderr
    result = runner.invoke(cli, ["merge", str(whole), "--format", "json"])
    assert result.exit_code == 0  # alone: the one job of a matrix without named clusters
    assert result.stdout == whole.read_text(encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"tool": ', encoding="utf-8")
    result = runner.invoke(cli, ["merge", *map(str, example_shards), str(broken)])
    assert result.exit_code == 2 and f"{broken}:1: not JSON" in result.stderr


def test_merge_refuses_shards_of_different_settings(example_shards: list[Path],
                                                    tmp_path: Path, runner: CliRunner) -> None:
    data = json.loads(example_shards[1].read_text(encoding="utf-8"))
    data["settings"]["sarifCategory"] = "other"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data), encoding="utf-8")
    result = runner.invoke(cli, ["merge", str(example_shards[0]), str(other)])
    assert result.exit_code == 2 and "sarif_category 'other' differs" in result.stderr


def test_merge_reads_folders_of_downloaded_artifacts(example_shards: list[Path],
                                                     tmp_path: Path, runner: CliRunner) -> None:
    for i, path in enumerate(example_shards, start=1):  # download-artifact: one folder each
        (tmp_path / f"shard-{i}").mkdir()
        (tmp_path / f"shard-{i}" / "report.json").write_bytes(path.read_bytes())
    result = runner.invoke(cli, ["merge", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output  # the shards' --fail-on never
    assert json.loads(result.stdout)["clusters"] == ["staging", "production"]


def test_merge_exit_code_follows_the_merged_report(example_shards: list[Path],
                                                   runner: CliRunner) -> None:
    """The example has errors: 1 with --fail-on error; the shards' own setting (never): 0."""
    assert runner.invoke(cli, ["merge", *map(str, example_shards), "--fail-on",
                               "error"]).exit_code == 1
    assert runner.invoke(cli, ["merge", *map(str, example_shards)]).exit_code == 0


def test_merge_function_needs_shards() -> None:
    with pytest.raises(fleet.MergeError, match="no shard reports"):
        fleet.merge([])
    lone = Report(findings=(), rules={}, resources_checked=0, files_checked=0,
                  shard=Shard(clusters=("a", "b"), parts=(ClusterPart("a"),)))
    with pytest.raises(fleet.MergeError, match="no shard report checked the cluster b"):
        fleet.merge([("x.json", lone)])


def test_merge_refuses_symbolic_links_among_the_reports(example_shards: list[Path],
                                                        tmp_path: Path,
                                                        runner: CliRunner) -> None:
    """The download folder is in the pull request's checkout: a committed link to a file
    outside it is refused, not read (its text could reach an error message)."""
    folder = tmp_path / "shards"
    folder.mkdir()
    for path in example_shards:
        (folder / path.name).write_bytes(path.read_bytes())
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "s3cr3t"}', encoding="utf-8")
    (folder / "zz.json").symlink_to(secret)
    result = runner.invoke(cli, ["merge", str(folder)])
    assert result.exit_code == 2 and "zz.json is a symbolic link" in result.stderr
    assert "s3cr3t" not in result.output
    (folder / "zz.json").unlink()
    (folder / "sub").symlink_to(tmp_path, target_is_directory=True)
    result = runner.invoke(cli, ["merge", str(folder)])
    assert result.exit_code == 2 and "sub is a symbolic link" in result.stderr
    result = runner.invoke(cli, ["merge", str(folder / "sub")])
    assert result.exit_code == 2 and "is a symbolic link" in result.stderr


def test_merge_refuses_a_shard_report_of_no_cluster(example_shards: list[Path],
                                                    tmp_path: Path, runner: CliRunner) -> None:
    data = json.loads(example_shards[0].read_text(encoding="utf-8"))
    data["shard"]["parts"] = []
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(data), encoding="utf-8")
    result = runner.invoke(cli, ["merge", *map(str, example_shards), str(empty)])
    assert result.exit_code == 2 and "checked no cluster" in result.stderr


def _hand_shard(cluster: str, base: str = "abc") -> Report:
    from checker.model import Finding, Severity, SourceLocation

    fixed = (Finding("p", "policy", Severity.ERROR, f"fixed in {cluster}",
                     SourceLocation(f"{cluster}.yaml", 1), cluster=cluster, baseline="absent"),
             Finding("input.parse-error", "input", Severity.ERROR, "shared file fixed",
                     SourceLocation("shared.yaml", 1), baseline="absent"))
    return Report(findings=(), rules={}, resources_checked=1, files_checked=1,
                  clusters=(cluster,), base=base, fixed=fixed,
                  shard=Shard(clusters=("a", "b"), parts=(ClusterPart(cluster),)))


def test_merge_adds_up_the_delta_of_its_shards() -> None:
    merged = fleet.merge([("a.json", _hand_shard("a")), ("b.json", _hand_shard("b"))])
    assert merged.base == "abc"
    assert sorted(f.message for f in merged.fixed) == [
        "fixed in a", "fixed in b", "shared file fixed"]  # the run's one: once
    with pytest.raises(fleet.MergeError, match=r"b\.json: base 'other' differs"):
        fleet.merge([("a.json", _hand_shard("a")), ("b.json", _hand_shard("b", "other"))])


def test_merge_puts_the_shards_impacts_together() -> None:
    from dataclasses import replace as _replace

    from checker.model import Impact, ImpactEntry, SourceLocation

    def entry(cluster: str) -> ImpactEntry:
        return ImpactEntry(cluster, "desired", "fails", "p", f"Pod {cluster}/x",
                           SourceLocation(f"{cluster}.yaml", 1), "changed")

    a = _replace(_hand_shard("a"), impact=Impact("base", entries=(entry("a"),)))
    b = _replace(_hand_shard("b"), impact=Impact("base", entries=(entry("b"),)))
    merged = fleet.merge([("b.json", b), ("a.json", a)])
    assert merged.impact is not None
    assert [e.cluster for e in merged.impact.entries] == ["a", "b"]
    with pytest.raises(fleet.MergeError, match="disagree on the policy-change impact"):
        fleet.merge([("a.json", a), ("b.json", _hand_shard("b"))])
