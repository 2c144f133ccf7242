"""Migration from Syncier Security Tower: its policy names and namespace image allowlists.

Security Tower marks exceptions with ``securitytower.io/policy.exclusion.<policy>``
annotations (older repositories: ``cloud.syncier.com/`` or ``phylake.io/`` instead of
``securitytower.io/``), where ``<policy>`` is the lower-cased name of a Security Tower policy.
``POLICY_ALIASES`` says which built-in policies each of those names stands for, so such an
annotation accepts the findings of our counterpart instead of being reported stale. A name
with no counterpart would map to nothing and stay stale, with a message saying so.

Namespaces declare the images their workloads may use with
``securitytower.io/imageallowlist.trustedregistries`` (registry hosts or host/path prefixes)
and ``securitytower.io/imageallowlist.trustedimages`` (image repositories, ``*`` at the end for
a prefix), each a list separated by commas or white space. The ``bp-allowed-registries``
policy (in Rego, from the Namespace Gatekeeper passes as ``namespaceObject``) and
``gitops-checker images`` honour them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

EXCLUSION_PREFIXES = (
    "securitytower.io/policy.exclusion.",
    "cloud.syncier.com/policy.exclusion.",
    "phylake.io/policy.exclusion.",
)
TRUSTED_REGISTRIES = "securitytower.io/imageallowlist.trustedregistries"
TRUSTED_IMAGES = "securitytower.io/imageallowlist.trustedimages"

# Security Tower policy name (lower-cased, as in its exclusion annotations) -> the built-in
# policies that check the same thing: (policy id, text its finding messages contain; "" for
# every finding of the policy). Documented in docs/migration-security-tower.md.
POLICY_ALIASES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "preventprivileged": (("pss-privileged", ""),),
    "enforceimageversion": (("image-tag", ""),),
    "containerlivenessprobe": (("bp-probes", "livenessProbe"),),
    "imageallowlist": (("bp-allowed-registries", ""),),
    "ingresstls": (("bp-ingress-tls", ""),),
    "enforceingresstls": (("bp-ingress-tls", ""),),  # the constraint name of its own Rego
}


def exclusion_policy(annotation: str) -> str | None:
    """The policy name of a Security Tower exclusion annotation, or None for another key."""
    for prefix in EXCLUSION_PREFIXES:
        if annotation.startswith(prefix):
            return annotation[len(prefix):]
    return None


def aliases(name: str) -> tuple[tuple[str, str], ...] | None:
    """The (policy id, message text) pairs a Security Tower policy name stands for; None when
    the name is not a known Security Tower policy."""
    return POLICY_ALIASES.get(name.lower())


def _split(value: Any) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[\s,]+", str(value)) if p) if value else ()


def namespace_allowlist(body: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(trusted registries, trusted images) a Namespace declares, or None when it declares none."""
    meta = body.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return None
    if TRUSTED_REGISTRIES not in annotations and TRUSTED_IMAGES not in annotations:
        return None
    return _split(annotations.get(TRUSTED_REGISTRIES)), _split(annotations.get(TRUSTED_IMAGES))


def _normalized_repository(text: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx``; ``ghcr.io/acme/app`` stays."""
    parts = text.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        return text
    return "docker.io/" + (text if len(parts) > 1 else f"library/{text}")


def image_trusted(registry: str, repository: str, registries: Sequence[str],
                  images: Sequence[str]) -> bool:
    """Whether ``registry/repository`` is in a namespace allowlist.

    A trusted registry is a host (``registry.example.com``) or a host and path prefix
    (``ghcr.io/acme``); a trusted image names a repository (``nginx`` means
    ``docker.io/library/nginx``), or a prefix when it ends with ``*``.
    """
    name = f"{registry}/{repository}"
    for entry in registries:
        entry = entry.rstrip("/")
        if registry == entry or name.startswith(entry + "/"):
            return True
    for entry in images:
        if entry == "*":
            return True
        if entry.endswith("*"):
            if name.startswith(_normalized_repository(entry[:-1])):
                return True
        elif name == _normalized_repository(entry):
            return True
    return False
