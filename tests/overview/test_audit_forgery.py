"""The audit trail cannot be forged: author names, shallow clones, unreadable versions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from checker.cli import cli
from checker.overview.audit import CHUNK_COMMITS, AuditOptions, parse_commit_object
from checker.overview.audit import audit as run_audit
from tests.overview.test_audit_trail import CRONJOB, DEPLOY, Repo, audit, audit_json, changes

# Under the old `%x1f`-joined format these extra fields slid into place: the status field
# read "G" (good signature) and the signer "Security Team".
FORGED = ("Mallory\x1fmallory@example.com\x1f2024-01-01T10:00:00+00:00\x1fCI Bot"
          "\x1fci@example.com\x1f2024-01-01T10:00:00+00:00\x1fG\x1fSecurity Team")


def test_author_name_with_unit_separator_does_not_forge_a_signature(tmp_path: Path) -> None:
    """``--require-signed`` fails for an unsigned commit whatever its author is called."""
    r = Repo(tmp_path / "repo")
    r.write("apps/cron.yaml", CRONJOB)
    base = r.commit("Add job", "Alice", 1)
    r.write("apps/cron.yaml", CRONJOB.replace("0 3", "0 4"))
    r.git("add", "-A")
    r.git("commit", "-q", "-m", "Innocent change", env={
        "GIT_AUTHOR_NAME": FORGED, "GIT_AUTHOR_EMAIL": "m@example.com",
        "GIT_AUTHOR_DATE": "2024-01-02T10:00:00+00:00", "GIT_COMMITTER_NAME": "CI Bot",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
        "GIT_COMMITTER_DATE": "2024-01-02T10:00:00+00:00"})
    forged = r.git("rev-parse", "HEAD")
    # git keeps the separators in the name: the attack input really is in the commit
    assert "\x1f" in r.git("log", "-1", "--format=%an")
    result = audit(r, "--format", "json", "--base", base, "--require-signed")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    unsigned = data["guardrails"]["signatures"]["unsigned"]
    assert [u["sha"] for u in unsigned] == [forged]
    assert unsigned[0]["signature"] == "unsigned"
    commit = data["commits"][0]
    assert commit["sha"] == forged
    assert commit["signature"] == {"status": "unsigned", "signer": ""}
    assert commit["author"] == {"name": FORGED, "email": "m@example.com",
                                "date": "2024-01-02T10:00:00+00:00"}
    assert commit["subject"] == "Innocent change"
    assert changes(commit) == [("modified", "CronJob", "jobs", "nightly")]


def test_commit_object_parsing_keeps_odd_names_whole() -> None:
    """Headers split at the first space; the e-mail is the last ``<...>``; gpgsig is seen."""
    raw = (b"tree " + b"a" * 40 + b"\nauthor A <b> c <a@x> 1704103200 +0130\n"
           b"committer C <c@x> 1704103200 -0800\ngpgsig -----BEGIN SSH SIGNATURE-----\n"
           b" abc\n -----END SSH SIGNATURE-----\n\nSubject\n\nBody\n")
    obj = parse_commit_object(raw)
    assert obj.author == ("A <b> c", "a@x", "2024-01-01T11:30:00+01:30")
    assert obj.committer == ("C", "c@x", "2024-01-01T02:00:00-08:00")
    assert obj.signed is True
    assert obj.message == "Subject\n\nBody"


def _history(tmp_path: Path) -> tuple[Repo, list[str]]:
    r = Repo(tmp_path / "origin")
    shas = []
    for day, tag in enumerate(("6.7.0", "6.7.1", "6.7.2"), start=1):
        r.write("apps/podinfo.yaml", DEPLOY.format(replicas=day, tag=tag))
        if day == 2:
            r.write("apps/cron.yaml", CRONJOB)
        shas.append(r.commit(f"Release {tag}", ["Alice", "Bob", "Carol"][day - 1], day))
    return r, shas


def test_shallow_clone_is_reported_not_credited(tmp_path: Path) -> None:
    """A depth-1 clone: exit 1 with the reason; the last committer did not add everything."""
    origin, shas = _history(tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{origin.path}",
                    str(clone)], check=True, capture_output=True, env=origin.env)
    result = CliRunner().invoke(cli, ["audit", "--repo", str(clone), "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["commits"] == []  # Carol's commit is not shown as adding the Deployment
    assert len(data["problems"]) == 1
    assert data["problems"][0].startswith(f"shallow clone: history before {shas[2][:12]}")
    assert "fetch-depth: 0" in data["problems"][0]
    assert data["violations"] == data["problems"]
    assert "gitops-checker: guardrail: shallow clone" in result.stderr
    md = CliRunner().invoke(cli, ["audit", "--repo", str(clone)]).stdout
    assert "> **Incomplete:** shallow clone: history before" in md
    # depth 2: the commit whose parent is present is audited as usual
    deeper = tmp_path / "deeper"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{origin.path}",
                    str(deeper)], check=True, capture_output=True, env=origin.env)
    two = CliRunner().invoke(cli, ["audit", "--repo", str(deeper), "--format", "json"])
    assert two.exit_code == 1
    commits = json.loads(two.stdout)["commits"]
    assert [(c["sha"], changes(c)) for c in commits] == [
        (shas[2], [("modified", "Deployment", "apps", "podinfo")])]
    # the full clone is complete: no problem, exit 0
    full = CliRunner().invoke(cli, ["audit", "--repo", str(origin.path), "--format", "json"])
    assert full.exit_code == 0
    assert json.loads(full.stdout)["problems"] == []


def test_unreadable_version_is_not_removed_then_added(tmp_path: Path) -> None:
    """A commit that breaks a file and the one that fixes it say so; nothing is removed."""
    r = Repo(tmp_path / "repo")
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=1, tag="6.7.0"))
    r.commit("Add", "Alice", 1)
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=1, tag="6.7.0") + "  broken: [\n")
    r.commit("Break", "Bob", 2)
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=2, tag="6.7.0"))
    r.commit("Fix", "Carol", 3)
    data = audit_json(r)
    by_subject = {c["subject"]: c["changes"] for c in data["commits"]}
    assert [c["change"] for c in by_subject["Break"]] == ["unreadable"]
    assert [c["change"] for c in by_subject["Fix"]] == ["unreadable"]
    broken = by_subject["Break"][0]
    assert broken["path"] == "apps/podinfo.yaml"
    assert len(broken["fields"]) == 1 and broken["fields"][0].startswith(
        "after this commit: line ")
    assert by_subject["Fix"][0]["fields"][0].startswith("before this commit: line ")
    assert data["summary"] == {"commits": 3, "added": 1, "modified": 0, "removed": 0,
                               "unreadable": 2}
    # a kind filter cannot hide a version whose objects are unknown
    assert len(audit_json(r, "--kind", "Secret")["commits"]) == 2
    md = audit(r).stdout
    assert "2 file versions unreadable" in md
    assert "| unreadable | - | - |" in md


def test_history_longer_than_a_chunk(tmp_path: Path) -> None:
    """Chunked reading gives the same trail as one pass: every commit, newest first."""
    r = Repo(tmp_path / "repo")
    count = CHUNK_COMMITS + 7
    script = "".join(
        f"commit refs/heads/main\ncommitter T <t@x> {1704103200 + i} +0000\n"
        f"data 2\nc{i % 10}\n"
        f"M 100644 inline cm.yaml\ndata <<EOF\napiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: cm}}\ndata: {{n: \"{i}\"}}\nEOF\n\n" for i in range(count))
    subprocess.run(["git", "-C", str(r.path), "fast-import", "--quiet"], input=script,
                   text=True, check=True, env=r.env)
    data = audit_json(r)
    assert data["summary"]["commits"] == count
    assert data["summary"]["added"] == 1 and data["summary"]["modified"] == count - 1
    dates = [c["committer"]["date"] for c in data["commits"]]
    assert dates == sorted(dates, reverse=True)
    calls: list[tuple[int, int]] = []
    trail = run_audit(AuditOptions(repo=r.path), progress=lambda d, t: calls.append((d, t)))
    assert len(trail.commits) == count
    assert calls == [(CHUNK_COMMITS, count), (count, count)]  # once per chunk
