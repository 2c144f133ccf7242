"""The shipped snapshot-reader RBAC is read-only and grants no subresource."""

from __future__ import annotations

from pathlib import Path

import yaml

RBAC = Path(__file__).parent.parent / "deploy" / "rbac" / "snapshot-reader.yaml"


def test_cluster_role_is_get_list_only_without_wildcards() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(RBAC.read_text())}
    assert set(docs) == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    rules = docs["ClusterRole"]["rules"]
    assert rules
    for rule in rules:
        assert sorted(rule["verbs"]) == ["get", "list"]
        assert "*" not in rule["apiGroups"]
        assert all("*" not in r and "/" not in r for r in rule["resources"])
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule
    binding = docs["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "snapshot-reader",
                                    "namespace": docs["ServiceAccount"]["metadata"]["namespace"]}]


def test_the_reader_only_issues_get_requests() -> None:
    source = (Path(__file__).parent.parent / "checker" / "drift" / "live.py").read_text()
    methods = {m for m in ("POST", "PUT", "PATCH", "DELETE") if f'"{m}"' in source}
    assert methods == set()
    assert '.request("GET"' in source
