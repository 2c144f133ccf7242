"""The shipped snapshot-reader RBAC is least privilege: list only, no subresource, Secrets
opt-in, and the docs say so."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT

RBAC = ROOT / "deploy" / "rbac" / "snapshot-reader.yaml"
SECRETS = ROOT / "deploy" / "rbac" / "snapshot-reader-secrets.yaml"


def test_cluster_role_is_get_list_only_without_wildcards() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(RBAC.read_text())}
    assert set(docs) == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    rules = docs["ClusterRole"]["rules"]
    assert rules
    for rule in rules:
        assert rule["verbs"] == ["list"]  # the reader never gets one object, never watches
        assert "secrets" not in rule["resources"] or rule["apiGroups"] != [""]
        assert "*" not in rule["apiGroups"]
        assert all("*" not in r and "/" not in r for r in rule["resources"])
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule
    binding = docs["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "snapshot-reader",
                                    "namespace": docs["ServiceAccount"]["metadata"]["namespace"]}]


def test_the_reader_only_issues_get_requests() -> None:
    source = (ROOT / "checker" / "drift" / "live.py").read_text()
    methods = {m for m in ("POST", "PUT", "PATCH", "DELETE") if f'"{m}"' in source}
    assert methods == set()
    assert '.request("GET"' in source


def test_the_reader_never_gets_single_objects() -> None:
    """Every request is discovery or a cluster-wide list: "get" would be an unused grant."""
    source = (ROOT / "checker" / "drift" / "live.py").read_text()
    assert "api.list_path" in source and "/namespaces/" not in source


def test_secret_access_is_a_separate_opt_in() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(SECRETS.read_text())}
    assert set(docs) == {"ClusterRole", "ClusterRoleBinding"}
    assert docs["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    main = {d["kind"]: d for d in yaml.safe_load_all(RBAC.read_text())}
    assert docs["ClusterRoleBinding"]["subjects"] == main["ClusterRoleBinding"]["subjects"]


def test_docs_agree_with_the_role() -> None:
    """The docs describe the shipped grant: list only, Secrets through the opt-in file."""
    for doc in ("docs/drift.md", "docs/github-action.md", "docs/security.md"):
        text = (ROOT / doc).read_text()
        assert "get/list/watch" not in text and '"get", "list"' not in text, doc
    drift = (ROOT / "docs/drift.md").read_text()
    assert "snapshot-reader-secrets.yaml" in drift and "only `list`" in drift
