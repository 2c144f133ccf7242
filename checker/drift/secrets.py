"""Keyed hashing of Secret values, so a snapshot can be compared without holding any value.

A Secret value is replaced by ``hmac-sha256:<hex>`` computed with a key. The key comes from the
``GITOPS_CHECKER_SECRET_KEY`` environment variable (shared by the job that writes the snapshot
and the job that reads it, so values in Git can be compared with live values) or, without it,
from a random per-run key that is never written anywhere. A snapshot records only the key's
*id* (a hash of the key), so a reader knows whether it holds the same key; it never records the
key or any value. Without the key, only the set of Secret keys is compared.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEY_ENV = "GITOPS_CHECKER_SECRET_KEY"
PREFIX = "hmac-sha256:"
UNVERIFIABLE = "<hashed with another key>"
REDACTED = "<redacted>"
SECRET_KINDS = frozenset({"Secret"})


@dataclass(frozen=True)
class SecretHasher:
    """HMAC-SHA256 of Secret values with one key; ``key_id`` identifies the key, not its value."""

    key: bytes
    ephemeral: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretHasher:
        """The key from ``GITOPS_CHECKER_SECRET_KEY``, else a random key for this run only."""
        env = os.environ if environ is None else environ
        value = env.get(KEY_ENV, "")
        if value:
            return cls(value.encode("utf-8"))
        return cls(secrets.token_bytes(32), ephemeral=True)

    @property
    def key_id(self) -> str:
        """A public identifier of the key: a domain-separated SHA-256, truncated."""
        return hashlib.sha256(b"gitops-checker secret key id\x00" + self.key).hexdigest()[:16]

    def digest(self, value: bytes) -> str:
        """``hmac-sha256:<hex>`` of a decoded Secret value."""
        return PREFIX + hmac.new(self.key, value, hashlib.sha256).hexdigest()


def is_hashed(value: Any) -> bool:
    """True for a value already replaced by a keyed hash."""
    return isinstance(value, str) and value.startswith(PREFIX)


def decode_data(value: Any) -> bytes:
    """Bytes of a Secret ``data`` entry (base64); undecodable text is hashed as it stands.

    ``null`` is the empty value: the API server stores ``data: {k: null}`` as an empty byte
    string and may return an empty value as ``null``.
    """
    if value is None:
        return b""
    if not isinstance(value, str):
        return str(value).encode("utf-8")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return value.encode("utf-8")


def hash_secret_values(body: Mapping[str, Any], hasher: SecretHasher) -> dict[str, Any]:
    """A copy of a Secret with ``stringData`` folded into ``data`` and every value hashed.

    ``stringData`` wins over ``data`` for the same key, as the API server does. Annotations
    that copy the object (last-applied, kapp's original and original-diff) are dropped, and
    any other annotation holding JSON is hashed (``protect_annotations``).
    """
    out = dict(body)
    data: dict[str, str] = {}
    raw = body.get("data")
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            data[str(key)] = value if is_hashed(value) else hasher.digest(decode_data(value))
    plain = body.get("stringData")
    if isinstance(plain, Mapping):
        for key, value in plain.items():
            data[str(key)] = hasher.digest(("" if value is None else str(value)).encode("utf-8"))
    out.pop("stringData", None)
    if data or "data" in body or "stringData" in body:
        out["data"] = dict(sorted(data.items()))
    meta = body.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = protect_annotations(meta, hasher, secret=True)
    return out


def is_encrypted(body: Mapping[str, Any]) -> bool:
    """A Secret manifest encrypted with SOPS: its values in Git cannot be compared."""
    if isinstance(body.get("sops"), Mapping):
        return True
    for name in ("data", "stringData"):
        values = body.get(name)
        if isinstance(values, Mapping) and any(
                isinstance(v, str) and v.startswith("ENC[") for v in values.values()):
            return True
    return False


def blind_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """A hashed Secret whose values cannot be checked (other key): keep only the key names."""
    out = dict(body)
    data = body.get("data")
    if isinstance(data, Mapping):
        out["data"] = {k: UNVERIFIABLE for k in data}
    return out


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Annotations that hold a copy of the object (or a diff of it) by design: always dropped.
COPY_ANNOTATIONS = frozenset({LAST_APPLIED, "kapp.k14s.io/original",
                              "kapp.k14s.io/original-diff"})
_DATA_KEYS = frozenset({"data", "stringData", "binaryData"})
_DATA_LINE = re.compile(r"^\s*[\"']?(?:data|stringData|binaryData)[\"']?\s*:", re.MULTILINE)
_DATA_PATH = re.compile(r"^/(?:data|stringData|binaryData)(?:/|$)")


def _holds_data(node: Any, depth: int = 0) -> bool:
    """A parsed value that contains object data: a ``data``/``stringData`` key, a Secret,
    or a JSON patch operation on ``/data`` (kapp's ``original-diff``)."""
    if depth > 64:
        return True  # deeper than any object: assume the worst
    if isinstance(node, Mapping):
        if _DATA_KEYS & {str(k) for k in node}:
            return True
        if node.get("kind") == "Secret":
            return True
        path = node.get("path")
        if isinstance(path, str) and _DATA_PATH.match(path):
            return True
        return any(_holds_data(v, depth + 1) for v in node.values())
    if isinstance(node, list):
        return any(_holds_data(v, depth + 1) for v in node)
    return False


def copies_object(value: Any, *, secret: bool = False) -> bool:
    """Whether an annotation value may carry a copy of an object's data.

    JSON is parsed and searched (``_holds_data``); anything else counts when a line looks like
    a YAML ``data:`` / ``stringData:`` key (YAML itself is not parsed: a live annotation of
    256 KiB could be an alias bomb). On a Secret, any JSON object or list counts.
    """
    if not isinstance(value, str):
        return False
    text = value.strip()
    if text[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return secret or _holds_data(parsed)
    return bool(_DATA_LINE.search(text))


def protect_annotations(meta: Mapping[str, Any], hasher: SecretHasher, *,
                        secret: bool) -> dict[str, Any]:
    """Metadata without copy annotations; any other annotation holding data is hashed."""
    out = dict(meta)
    annotations = meta.get("annotations")
    if not isinstance(annotations, Mapping):
        return out
    kept: dict[str, Any] = {}
    for key, value in annotations.items():
        if key in COPY_ANNOTATIONS:
            continue
        if copies_object(value, secret=secret):
            value = hasher.digest(str(value).encode("utf-8"))
        kept[key] = value
    out["annotations"] = kept
    return out
