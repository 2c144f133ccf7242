"""Repository config: .gitops-checker.yaml, Security Tower cluster files, defaults, errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from checker.config import Cluster, Config, load_config, schema
from checker.errors import ConfigError
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "multi-cluster"
ST_CLUSTER = """\
apiVersion: securitytower.io/v1alpha1
kind: Cluster
metadata:
  name: {name}
spec:
  policies:
    path: {path}
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_schema_is_valid_draft7_and_shipped_as_package_data() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"schemas/*.json"' in pyproject


def test_no_config_is_one_unnamed_cluster_of_the_given_paths(tmp_path: Path) -> None:
    write(tmp_path, "app/deploy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    config = load_config(tmp_path, default_paths=[tmp_path / "app"])
    assert config.source == ""
    assert not config.named
    assert config.clusters == (Cluster(name="", environment="", paths=(tmp_path / "app",),
                                       packs=(), policies=(), overrides={}),)
    assert load_config(tmp_path).clusters[0].paths == (tmp_path,)


def test_security_tower_file_alone_gives_a_cluster_with_its_policies(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    write(tmp_path, ".securitytower/prod.yaml", ST_CLUSTER.format(name="prod", path="/policies"))
    config = load_config(tmp_path, default_paths=[tmp_path])
    assert config.security_tower == (".securitytower/prod.yaml",)
    (cluster,) = config.clusters
    assert cluster.name == "prod"
    assert cluster.policies == (tmp_path / "policies",)
    assert cluster.packs == ("none",)  # only the policies Security Tower enforced
    assert cluster.paths == (tmp_path,)
    assert cluster.source == ".securitytower/prod.yaml:1"


@pytest.mark.parametrize(("text", "message"), [
    ("apiVersion: securitytower.io/v1beta9\nkind: Cluster\nmetadata: {name: x}\n",
     ".securitytower/x.yaml:1: expected apiVersion securitytower.io/v1alpha1"),
    ("apiVersion: securitytower.io/v1alpha1\nkind: Cluster\nmetadata: {}\n",
     ".securitytower/x.yaml:3: metadata.name is required"),
    (ST_CLUSTER.format(name="x", path="missing"),
     ".securitytower/x.yaml:7: policies folder 'missing' does not exist"),
    (ST_CLUSTER.format(name="x", path="../../etc"),
     ".securitytower/x.yaml:7: path '../../etc' leaves the repository"),
    ("apiVersion: securitytower.io/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n"
     "  policies:\n    repository: org/central\n    path: policies\n",
     ".securitytower/x.yaml:6: policies in another repository (org/central) are not read"),
])
def test_security_tower_errors_name_file_and_line(tmp_path: Path, text: str,
                                                  message: str) -> None:
    write(tmp_path, ".securitytower/x.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert str(err.value).startswith(message)


def test_config_file_merges_with_security_tower_and_inherits_defaults(tmp_path: Path) -> None:
    for folder in ("policies", "extra", "clusters/a", "clusters/b"):
        (tmp_path / folder).mkdir(parents=True)
    write(tmp_path, ".securitytower/a.yaml", ST_CLUSTER.format(name="a", path="policies"))
    write(tmp_path, ".gitops-checker.yaml", """\
version: 1
defaults:
  packs: [pss-baseline]
  overrides:
    image-tag: {severity: warning}
clusters:
  - name: b
    environment: production
    paths: [clusters/b]
    policies: [extra]
    overrides:
      image-tag: {parameters: {disallowedTags: [edge]}}
  - name: a
    environment: staging
    paths: [/clusters/a]
acceptances: files-only
groupBy: pack
drift:
  ignore:
    - {kind: Deployment, path: spec.replicas}
""")
    config = load_config(tmp_path)
    assert isinstance(config, Config)
    assert config.source == ".gitops-checker.yaml"
    assert [c.name for c in config.clusters] == ["b", "a"]  # config order
    b, a = config.clusters
    assert (b.environment, b.paths, b.packs, b.policies) == (
        "production", (tmp_path / "clusters/b",), ("pss-baseline",), (tmp_path / "extra",))
    assert b.overrides == {"image-tag": {"severity": "warning",
                                         "parameters": {"disallowedTags": ["edge"]}}}
    # a: Security Tower's policies folder, the config's paths and the default packs.
    assert (a.environment, a.paths, a.packs, a.policies) == (
        "staging", (tmp_path / "clusters/a",), ("pss-baseline",), (tmp_path / "policies",))
    assert a.source == ".gitops-checker.yaml:13"
    assert config.acceptances.inline is False
    assert config.group_by == "pack"
    assert config.drift_ignore == ({"kind": "Deployment", "path": "spec.replicas"},)


@pytest.mark.parametrize(("text", "message"), [
    ("clusters:\n  - name: a\n    pathz: [x]\n",
     ".gitops-checker.yaml:2: invalid config at clusters.0: Additional properties are not "
     "allowed ('pathz' was unexpected)"),
    ("clusters:\n  - name: a\n    overrides:\n      image-tag: {severity: fatal}\n",
     ".gitops-checker.yaml:4: invalid config at clusters.0.overrides.image-tag.severity: "
     "'fatal' is not one of"),
    ("clusters:\n  - name: a\n  - name: a\n", ".gitops-checker.yaml:3: cluster 'a' is declared "
     "twice"),
    ("acceptances: sometimes\n", ".gitops-checker.yaml:1: invalid config at acceptances"),
    ("clusters: [\n", ".gitops-checker.yaml:2: invalid YAML"),
    ("clusters:\n  - name: a\n    paths: [../outside]\n",
     ".gitops-checker.yaml:3: path '../outside' leaves the repository"),
    ("defaults:\n  policies: [nope]\n", ".gitops-checker.yaml:2: policies folder 'nope' does "
     "not exist"),
    ("acceptances:\n  paths: [risks]\n", ".gitops-checker.yaml:2: acceptance path 'risks' "
     "does not exist"),
])
def test_invalid_config_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, ".gitops-checker.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert str(err.value).startswith(message), str(err.value)


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(tmp_path, tmp_path / "nope.yaml")


def test_example_config_is_schema_valid_and_resolves_two_clusters() -> None:
    import yaml

    data = yaml.safe_load((EXAMPLE / ".gitops-checker.yaml").read_text())
    jsonschema.validate(data, schema())
    config = load_config(EXAMPLE)
    assert [(c.name, c.environment) for c in config.clusters] == [
        ("staging", "staging"), ("production", "production")]
    staging, production = config.clusters
    assert staging.policies == production.policies == (EXAMPLE / "policies",)
    rel = [p.relative_to(EXAMPLE).as_posix() for p in production.paths]
    assert rel == ["clusters/production", "apps/podinfo/overlays/production",
                   "infrastructure/shared", "infrastructure/production"]
    assert json.dumps(sorted(config.security_tower)) == json.dumps(
        [".securitytower/production.yaml", ".securitytower/staging.yaml"])


def test_security_tower_file_without_policies_gets_the_default_packs(tmp_path: Path) -> None:
    write(tmp_path, ".securitytower/dev.yml", "apiVersion: securitytower.io/v1alpha1\n"
          "kind: Cluster\nmetadata:\n  name: dev\n")
    (cluster,) = load_config(tmp_path).clusters
    assert (cluster.name, cluster.packs, cluster.policies) == ("dev", (), ())


def test_config_overrides_switch_policies_on_and_off(tmp_path: Path) -> None:
    """`enabled` (documented in docs/packs.md) is accepted by the config file and acted on."""
    from checker.pipeline import ScanOptions, scan

    write(tmp_path, ".gitops-checker.yaml", """\
version: 1
defaults:
  packs: [best-practice]
  overrides:
    bp-image-digest: {enabled: true}
    bp-resources: {enabled: false}
""")
    write(tmp_path, "pod.yaml", """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: a}
spec:
  containers: [{name: c, image: "registry.example.com/app:1.2"}]
""")
    report = scan(ScanOptions(paths=(tmp_path,), root=tmp_path))
    rules = {f.rule_id for f in report.findings}
    assert "bp-image-digest" in rules  # off by default, switched on
    assert "bp-resources" not in rules  # on by default, switched off
    assert "bp-probes" in rules  # untouched


def test_config_enabled_must_be_a_boolean(tmp_path: Path) -> None:
    write(tmp_path, ".gitops-checker.yaml",
          "version: 1\ndefaults:\n  overrides:\n    bp-image-digest: {enabled: 'yes'}\n")
    with pytest.raises(ConfigError, match=r"\.gitops-checker\.yaml:4.*enabled"):
        load_config(tmp_path, None, (tmp_path,))
