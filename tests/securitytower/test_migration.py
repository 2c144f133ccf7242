"""Migration from Security Tower: exclusion annotations by its policy names, namespace image
allowlists in ``bp-allowed-registries`` and ``images``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.options import ScanOptions
from checker.pipeline import scan
from checker.policy.packs import load_catalog
from checker.securitytower import POLICY_ALIASES, aliases, exclusion_policy, image_trusted

WORKLOAD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: foo
  annotations:
{annotations}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        securityContext: {{privileged: true}}
"""
NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: foo
  annotations:
    securitytower.io/imageallowlist.trustedimages: >-
      nginx
"""


def findings(tmp_path: Path, annotations: str, image: str = "registry.example.com/web:1.0",
             packs: tuple[str, ...] = ("pss-baseline", "best-practice")) -> list[tuple[str, str]]:
    (tmp_path / "app.yaml").write_text(WORKLOAD.format(annotations=annotations, image=image),
                                       encoding="utf-8")
    report = scan(ScanOptions(paths=(tmp_path / "app.yaml",), root=tmp_path, packs=packs))
    return sorted((f.rule_id, f.message) for f in report.active)


def test_every_alias_names_a_built_in_policy() -> None:
    catalog = load_catalog()
    for name, targets in POLICY_ALIASES.items():
        assert name == name.lower()
        for pid, _ in targets:
            assert pid in catalog.policies, (name, pid)


@pytest.mark.parametrize("prefix", ["securitytower.io", "cloud.syncier.com", "phylake.io"])
def test_preventprivileged_accepts_pss_privileged(tmp_path: Path, prefix: str) -> None:
    got = findings(tmp_path, f"    {prefix}/policy.exclusion.preventprivileged: host agent")
    assert "pss-privileged" not in {rule for rule, _ in got}
    assert not [m for rule, m in got if rule == "acceptance.stale"]


def test_without_the_alias_the_finding_stays(tmp_path: Path) -> None:
    got = findings(tmp_path, "    example.com/unrelated: x")
    assert "pss-privileged" in {rule for rule, _ in got}


def test_containerlivenessprobe_accepts_only_the_liveness_finding(tmp_path: Path) -> None:
    got = findings(tmp_path, "    securitytower.io/policy.exclusion.containerlivenessprobe: batch")
    probes = [m for rule, m in got if rule == "bp-probes"]
    assert probes == ["container web must declare a readinessProbe"]


def test_enforceimageversion_accepts_image_tag(tmp_path: Path) -> None:
    got = findings(tmp_path, "    securitytower.io/policy.exclusion.enforceimageversion: pinned later",
                   image="registry.example.com/web:latest")
    assert "image-tag" not in {rule for rule, _ in got}


def test_a_name_without_counterpart_is_stale_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POLICY_ALIASES, "enforcesomething", ())  # hypothetical, unported
    got = findings(tmp_path,
                   "    securitytower.io/policy.exclusion.enforcesomething: internal only")
    [stale] = [m for rule, m in got if rule == "acceptance.stale"]
    assert "enforcesomething (Security Tower policy with no gitops-checker counterpart)" in stale


INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: intranet
  namespace: foo
  annotations:
{annotations}
spec:
  rules:
  - host: intranet.example.com
"""


@pytest.mark.parametrize("name", ["ingresstls", "EnforceIngressTls"])
def test_ingresstls_accepts_bp_ingress_tls(tmp_path: Path, name: str) -> None:
    def rules(annotations: str) -> set[str]:
        (tmp_path / "ingress.yaml").write_text(INGRESS.format(annotations=annotations),
                                               encoding="utf-8")
        report = scan(ScanOptions(paths=(tmp_path / "ingress.yaml",), root=tmp_path,
                                  packs=("best-practice",)))
        return {f.rule_id for f in report.active}

    assert "bp-ingress-tls" in rules("    team: web")  # plain HTTP is a finding
    excluded = rules(f"    securitytower.io/policy.exclusion.{name}: behind the VPN")
    assert "bp-ingress-tls" not in excluded and "acceptance.stale" not in excluded


def test_exclusion_policy_and_aliases() -> None:
    assert exclusion_policy("securitytower.io/policy.exclusion.ImageAllowList") == "ImageAllowList"
    assert exclusion_policy("gitops-checker.io/accept.pss-privileged") is None
    assert aliases("ImageAllowList") == (("bp-allowed-registries", ""),)
    assert aliases("nosuchpolicy") is None


@pytest.mark.parametrize(("registry", "repository", "registries", "images", "trusted"), [
    ("docker.io", "library/nginx", (), ("nginx",), True),
    ("docker.io", "library/nginx-unprivileged", (), ("nginx",), False),
    ("docker.io", "acme/app", (), ("acme/*",), True),
    ("ghcr.io", "acme/app", ("ghcr.io/acme",), (), True),
    ("ghcr.io", "acme-evil/app", ("ghcr.io/acme",), (), False),
    ("quay.io", "x/y", ("quay.io",), (), True),
    ("quay.io", "x/y", (), ("*",), True),
    ("quay.io", "x/y", (), (), False),
])
def test_image_trusted(registry: str, repository: str, registries: tuple[str, ...],
                       images: tuple[str, ...], trusted: bool) -> None:
    assert image_trusted(registry, repository, registries, images) is trusted


def test_allowed_registries_policy_reads_the_namespace_allowlist(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NAMESPACE, encoding="utf-8")
    (tmp_path / ".gitops-checker.yaml").write_text(
        "defaults:\n  packs: [best-practice]\n  overrides:\n"
        "    bp-allowed-registries: {enabled: true}\n", encoding="utf-8")
    for image, expected in (("nginx:1.25", []), ("quay.io/acme/app:1.0", ["quay.io/acme/app"])):
        (tmp_path / "app.yaml").write_text(
            WORKLOAD.format(annotations="    a: b", image=image), encoding="utf-8")
        report = scan(ScanOptions(paths=(tmp_path,), root=tmp_path))
        got = [f.message for f in report.active if f.rule_id == "bp-allowed-registries"]
        assert [e for e in expected if any(e in m for m in got)] == expected and (
            len(got) == len(expected)), got


def test_images_honours_the_namespace_allowlist(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NAMESPACE, encoding="utf-8")
    (tmp_path / "app.yaml").write_text(
        WORKLOAD.format(annotations="    a: b", image="nginx:1.25")
        + "---\n" + WORKLOAD.format(annotations="    a: b", image="quay.io/acme/app:1.0")
        .replace("name: web\n  namespace", "name: api\n  namespace"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["images", str(tmp_path), "--root", str(tmp_path),
                                      "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    flags = {u["resource"]["name"]: u["flags"] for u in json.loads(result.output)["images"]}
    assert "disallowed-registry" not in flags["web"]
    assert "disallowed-registry" in flags["api"]
