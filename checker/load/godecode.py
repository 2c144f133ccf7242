"""Scalars as the Kubernetes decoder reads them.

kubectl, Flux and Argo CD turn YAML into JSON with ``sigs.k8s.io/yaml``: a YAML 1.1 reading
(go-yaml v2) converted to JSON, which the API server then decodes (integers as int64, other
numbers as float64). PyYAML's YAML 1.1 differs in the places that matter for policy:
``y``/``Y``/``n``/``N`` are booleans, ``0o17`` and ``0x1F`` are integers, ``1e3`` is a number
(1000), ``1:30`` is text, and a mapping key ``y`` arrives as ``"true"``. The rules here are
written from the behaviour of that decoder (its resolve table and ``strconv`` number syntax)
and checked against ``kubectl`` itself in ``tests/load/test_decoder_oracle.py``:

- booleans: ``y Y yes Yes YES true True TRUE on On ON`` and the same for false with
  ``n no false off``; null: empty, ``~``, ``null``, ``Null``, ``NULL``;
- a plain scalar starting with a digit or sign, underscores removed, is an integer if Go's
  ``ParseInt(s, 0, 64)`` reads it (``0x``, ``0o``, ``0b`` prefixes, a leading ``0`` is octal),
  else an unsigned one if ``ParseUint`` does, else a float if it looks like
  ``[-+]?(\\.d+|d+(\\.d*)?)([eE][-+]?d+)?``; one starting with ``.`` is a float if it is a
  decimal number; ``.inf``, ``-.inf``, ``.nan`` (three spellings each) are the special floats;
- everything else is text.

Then JSON: NaN and infinities cannot be encoded (kubectl rejects the document); a float with
an integral value below 2^63 arrives as an integer, an integer of 2^63 or more as a float.
Mapping keys become text: ``true``/``false``, integers in decimal, floats in Go's shortest
32-bit ``%g`` form; a null or unsigned key cannot be converted (kubectl rejects it).
"""

from __future__ import annotations

import binascii
import math
import re
import struct
from typing import Any

BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
NULL = "tag:yaml.org,2002:null"
STR = "tag:yaml.org,2002:str"
MERGE = "tag:yaml.org,2002:merge"

_TRUE = frozenset(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"])
_FALSE = frozenset(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"])
_NULL = frozenset(["", "~", "null", "Null", "NULL"])
_SPECIAL = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_GO_INT = re.compile(
    r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))\Z")
_NUMERIC_START = frozenset("+-0123456789")
INT64 = 1 << 63
UINT64 = 1 << 64


class Unrepresentable(ValueError):
    """A value the Kubernetes decoder cannot turn into JSON (NaN, infinity, a null key)."""


def _go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``, or ``ParseUint`` for what does not fit (no sign)."""
    match = _GO_INT.match(text)
    if match is None:
        return None
    sign, hexa, octal, binary, zero_octal, decimal = match.groups()
    if hexa is not None:
        value = int(hexa, 16)
    elif octal is not None:
        value = int(octal, 8)
    elif binary is not None:
        value = int(binary, 2)
    elif zero_octal is not None:
        value = int(zero_octal or "0", 8)
    else:
        value = int(decimal)
    if sign == "-":
        value = -value
    if -INT64 <= value < INT64:
        return value
    if not sign and value < UINT64:
        return value
    return None


def resolve(text: str) -> tuple[str, Any]:
    """The tag and value go-yaml v2 gives a plain scalar (before the JSON conversion)."""
    if text in _TRUE:
        return BOOL, True
    if text in _FALSE:
        return BOOL, False
    if text in _NULL:
        return NULL, None
    if text == "<<":
        return MERGE, text
    special = _SPECIAL.get(text)
    if special is not None:
        return FLOAT, special
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.match(text):
            number = float(text)
            if not math.isinf(number):  # Go: a range error, so the text stays text
                return FLOAT, number
        return STR, text
    if first in _NUMERIC_START:
        plain = text.replace("_", "")
        integer = _go_int(plain)
        if integer is not None:
            return INT, integer
        if _YAML_FLOAT.match(plain):
            number = float(plain)
            if not math.isinf(number):
                return FLOAT, number
    return STR, text


def tag_of(text: str) -> str:
    """Only the tag of ``resolve``."""
    return resolve(text)[0]


def to_json(value: Any) -> Any:
    """A resolved scalar as the API server receives it after the JSON round trip."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise Unrepresentable(f"{value} cannot be encoded as JSON")
        if value.is_integer() and -INT64 <= value < INT64:
            return int(value)
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= INT64:
        return float(value)
    return value


def explicit(tag: str, text: str) -> Any:
    """The value of a scalar with an explicit ``!!bool``/``!!int``/``!!float``/``!!null`` tag.

    go-yaml resolves the text and accepts it only when it resolves to that tag (an integer is
    accepted as a float). Raises ``ValueError`` otherwise.
    """
    found, value = resolve(text) if text else (NULL, None)  # type: tuple[str, Any]
    if found == tag:
        return value
    if tag == FLOAT and found == INT:
        return float(value)
    raise ValueError(f"cannot decode {text!r} as {tag.rsplit(':', 1)[-1]}")


def binary(text: str) -> str:
    """The string go-yaml makes of a ``!!binary`` scalar (what kubectl sends).

    go-yaml v2 decodes the text with Go's ``base64.StdEncoding`` (padding required; line
    breaks skipped, nothing else) into bytes it keeps as a Go string; the JSON encoder then
    writes each byte that is not part of valid UTF-8 as U+FFFD. Raises ``ValueError`` for
    text that is not base64 (kubectl: "!!binary value contains invalid base64 data").
    """
    try:
        raw = binascii.a2b_base64(text.replace("\r", "").replace("\n", ""), strict_mode=True)
    except binascii.Error as err:
        raise ValueError("!!binary value contains invalid base64 data") from err
    return re.sub("[\udc80-\udcff]", "\ufffd", raw.decode("utf-8", "surrogateescape"))


def key_text(tag: str, value: Any) -> str:
    """A resolved mapping key as the JSON key ``sigs.k8s.io/yaml`` writes."""
    if tag == BOOL:
        return "true" if value else "false"
    if tag == INT:
        if value >= INT64:
            raise Unrepresentable(f"unsupported map key {value} (unsigned 64-bit)")
        return str(value)
    if tag == FLOAT:
        return format_float32(value)
    if tag == NULL:
        raise Unrepresentable("unsupported map key: null")
    return str(value)


def format_float32(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 32)``, with YAML's names for the specials."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    single = struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3.5e38 else value
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    for digits in range(1, 10):  # shortest decimal that reads back as the same float32
        text = f"{single:.{digits - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    figures = mantissa.replace(".", "").replace("-", "").rstrip("0") or "0"
    sign = "-" if single < 0 else ""
    if exponent < -4 or exponent >= 6:  # Go: shortest %g switches to %e from 1e6 on
        head = figures[0] + ("." + figures[1:] if len(figures) > 1 else "")
        return f"{sign}{head}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{figures}"
    if len(figures) <= exponent + 1:
        return sign + figures + "0" * (exponent + 1 - len(figures))
    return f"{sign}{figures[:exponent + 1]}.{figures[exponent + 1:]}"
