"""The CEL environment Kubernetes gives admission expressions, on Google's CEL runtime.

Expressions are compiled and run by ``cel-expr-python`` (the C++ CEL implementation). The
libraries Kubernetes adds to CEL (``k8s.io/apiserver/pkg/cel/library``) are functions of this
module, declared with the same names and types: lists, regex, URL, quantity, IP and CIDR,
semver, sets, and the string, optional, bindings and base64 extensions of cel-go. Values of
Kubernetes' own types (Quantity, URL, IP, CIDR, Semver) are protobuf messages of a small
descriptor built here, so that ``==`` and ``type()`` work on them as on any CEL value.

Authorizer calls (``authorizer.group(...)...``) ask the API server's authorizer, which is not
there offline: an expression that names ``authorizer`` is not evaluated, and its policy gets a
finding that says so (``Unsupported``), never a silent pass.

Budget: the runtime stops an evaluation after 10,000 comprehension iterations ("Iteration
budget exceeded"), which is reported as an evaluation error; every evaluation in ``scan`` also
runs in a bounded worker (``checker.parallel``), so a runaway expression is an error, not a hang.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import ipaddress
import itertools
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from checker.errors import PolicyError

RUNTIME = "cel-expr-python"
MAX_EXPRESSION = 5 * 1024  # bytes: the API server refuses longer expressions
ITERATION_BUDGET = 10_000  # the runtime's comprehension iterations per evaluation
_AUTHORIZER = re.compile(r"(?<![\w.])authorizer\b")


class Unsupported(PolicyError):
    """An expression uses something that cannot be decided here (authorizer calls)."""


def runtime_version() -> str:
    """The CEL runtime's name and version, for reports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{RUNTIME} {version(RUNTIME)}"
    except PackageNotFoundError:  # pragma: no cover - a dependency
        return RUNTIME


def _cel() -> Any:
    try:
        from cel_expr_python import cel
    except ImportError as err:  # pragma: no cover - a dependency
        raise PolicyError("CEL runtime cel-expr-python is not installed") from err
    return cel


class CelError(ValueError):
    """An error raised inside a library function: the expression evaluates to an error."""


# --- Kubernetes value types as protobuf messages ------------------------------------------------

_TYPES = {
    "Quantity": ("v",), "URL": ("v",), "IP": ("v",),
    "Semver": ("major", "minor", "patch", "pre"),
    # format library: a named format, and the optional values format.named and validate
    # return (one type: the runtime registers one implementation per message-typed member);
    # v is "" for none, "format:<name>" or "errors:<errors, one a line>"
    "Format": ("v",), "Optional": ("v",),
}
_PACKAGE = "kubernetes"


@functools.cache
def _pool() -> tuple[Any, dict[str, Any]]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="gitops_checker_k8s_cel.proto",
                                             package=_PACKAGE, syntax="proto3")
    string, int64 = (descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                     descriptor_pb2.FieldDescriptorProto.TYPE_INT64)
    for name, fields in _TYPES.items():
        message = fdp.message_type.add(name=name)
        for number, field_name in enumerate(fields, 1):
            kind = int64 if field_name in ("major", "minor", "patch") else string
            message.field.add(name=f"gitops_checker_{field_name}", number=number, type=kind,
                              label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")) for name in _TYPES}
    return pool, classes


def _make(kind: str, **fields: Any) -> Any:
    return _pool()[1][kind](**{f"gitops_checker_{k}": v for k, v in fields.items()})


def _v(message: Any) -> str:
    return str(message.gitops_checker_v)


# --- quantity -----------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|"
                       r"[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_INT64 = (-(2**63), 2**63 - 1)
MAX_EXPONENT = 1000  # a larger exponent (or number) is refused, not computed


def parse_quantity(text: str) -> Fraction:
    """The value of a Kubernetes quantity string (``resource.ParseQuantity``'s grammar)."""
    m = _QUANTITY.match(text)
    if m is None:
        raise CelError(f"quantities must match the regular expression "
                       f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")
    number, suffix = Fraction(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        return number * Fraction(2 ** _BINARY[suffix])
    exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
    if abs(exponent) > MAX_EXPONENT or len(m.group(1)) > MAX_EXPONENT:
        raise CelError(f"quantity {text[:40]!r} is too large")
    return number * (Fraction(10) ** exponent if exponent >= 0
                     else Fraction(1, 10 ** -exponent))


def _qty(value: Fraction) -> Any:
    return _make("Quantity", v=f"{value.numerator}/{value.denominator}")


def _qv(message: Any) -> Fraction:
    return Fraction(_v(message))


def _quantity(text: str) -> Any:
    return _qty(parse_quantity(text))


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except CelError:
        return False
    return True


def _q_is_integer(q: Any) -> bool:
    value = _qv(q)
    return value.denominator == 1 and _INT64[0] <= value.numerator <= _INT64[1]


def _q_as_integer(q: Any) -> int:
    if not _q_is_integer(q):
        raise CelError("cannot convert value to integer")
    return _qv(q).numerator


def _sign(value: Fraction) -> int:
    return (value > 0) - (value < 0)


def _q_other(other: Any) -> Fraction:
    return Fraction(other) if isinstance(other, int) else _qv(other)


# --- URL ----------------------------------------------------------------------------------------


def _parse_url(text: str) -> urllib.parse.SplitResult:
    """An absolute URI or an absolute path, as Go's ``url.ParseRequestURI`` accepts them."""
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise CelError(f"URL parse error during conversion from string: {text!r}")
    parts = urllib.parse.urlsplit(text)
    if " " in parts.netloc:
        raise CelError(f"URL parse error during conversion from string: {text!r}: invalid "
                       "character in host name")
    if not parts.scheme and not text.startswith("/"):
        raise CelError(f"URL parse error during conversion from string: {text!r}: invalid URI "
                       "for request")
    if parts.fragment or "#" in text:
        raise CelError(f"URL parse error during conversion from string: {text!r}: fragments "
                       "are not allowed")
    return parts


def _url(text: str) -> Any:
    _parse_url(text)
    return _make("URL", v=text)


def _is_url(text: str) -> bool:
    try:
        _parse_url(text)
    except (CelError, ValueError):
        return False
    return True


def _host(u: Any) -> str:
    return _parse_url(_v(u)).netloc.rpartition("@")[2]


def _hostname(u: Any) -> str:
    host = _host(u)
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _port(u: Any) -> str:
    host = _host(u)
    if host.startswith("["):
        rest = host[host.find("]") + 1:]
        return rest[1:] if rest.startswith(":") else ""
    return host.rpartition(":")[2] if ":" in host else ""


def _query(u: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in urllib.parse.parse_qsl(_parse_url(_v(u)).query, keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


# --- IP and CIDR --------------------------------------------------------------------------------


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address as Kubernetes' CEL library accepts it: no zones, no IPv4-mapped IPv6."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as err:
        raise CelError(f"IP Address {text!r} parse error during conversion from string: "
                       f"{err}") from err
    if isinstance(addr, ipaddress.IPv6Address) and (addr.ipv4_mapped or addr.scope_id):
        raise CelError(f"IPv4-mapped IPv6 address or zone not allowed: {text!r}")
    return addr


def _ip(text: str) -> Any:
    return _make("IP", v=str(_parse_ip(text)))


def _is_ip(text: str) -> bool:
    try:
        _parse_ip(text)
    except CelError:
        return False
    return True


def _ipv(message: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "/" in _v(message):
        raise CelError("no such overload: a CIDR, not an IP")
    return ipaddress.ip_address(_v(message))


def _is_canonical(text: str) -> bool:
    return str(_parse_ip(text)) == text


def _parse_cidr(text: str) -> tuple[Any, Any]:
    addr, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit():
        raise CelError(f"network address parse error during conversion from string: {text!r}")
    ip = _parse_ip(addr)
    try:
        network = ipaddress.ip_network(f"{ip}/{int(prefix)}", strict=False)
    except ValueError as err:
        raise CelError(f"network address parse error during conversion from string: "
                       f"{text!r}: {err}") from err
    return ip, network


def _cidr(text: str) -> Any:
    ip, network = _parse_cidr(text)
    return _make("IP", v=f"{ip}/{network.prefixlen}")


def _is_cidr(text: str) -> bool:
    try:
        _parse_cidr(text)
    except CelError:
        return False
    return True


def _net(message: Any) -> Any:
    if "/" not in _v(message):
        raise CelError("no such overload: an IP, not a CIDR")
    return _parse_cidr(_v(message))[1]


def _contains_ip(c: Any, other: Any) -> bool:
    ip = _parse_ip(other) if isinstance(other, str) else _ipv(other)
    network = _net(c)
    return ip.version == network.version and ip in network


def _contains_cidr(c: Any, other: Any) -> bool:
    sub = _parse_cidr(other)[1] if isinstance(other, str) else _net(other)
    network = _net(c)
    return bool(sub.version == network.version and sub.subnet_of(network))


# --- semver -------------------------------------------------------------------------------------

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
                     r"(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
                     r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


def _normalize_semver(text: str) -> str:
    """Kubernetes' normalization: drop a leading v, fill missing minor/patch, strip zeros."""
    text = text.removeprefix("v")
    m = re.match(r"^([0-9.]+)(.*)$", text, re.DOTALL)
    if m is None:
        return text
    parts = m.group(1).split(".")
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        return text
    parts += ["0"] * (3 - len(parts))
    return ".".join(str(int(p)) for p in parts) + m.group(2)


def _parse_semver(text: str, normalize: bool = False) -> Any:
    m = _SEMVER.match(_normalize_semver(text) if normalize else text)
    if m is None:
        raise CelError(f"could not parse semver {text!r}")
    return _make("Semver", major=int(m.group(1)), minor=int(m.group(2)),
                 patch=int(m.group(3)), pre=m.group(4) or "")


def _is_semver(text: str, normalize: bool = False) -> bool:
    try:
        _parse_semver(text, normalize)
    except CelError:
        return False
    return True


def _pre_key(pre: str) -> tuple[Any, ...]:
    if not pre:
        return ((2,),)  # a release sorts after its pre-releases
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))


def _semver_key(s: Any) -> tuple[Any, ...]:
    return (s.gitops_checker_major, s.gitops_checker_minor, s.gitops_checker_patch,
            _pre_key(s.gitops_checker_pre))


def _compare(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


# --- lists, regex, sets -------------------------------------------------------------------------


def _comparable(items: Sequence[Any]) -> list[Any]:
    """The elements, when they are of one comparable kind (numbers, strings, bools, bytes)."""
    def kind(x: Any) -> str:
        if isinstance(x, bool):
            return "bool"
        if isinstance(x, (int, float)):
            return "number"
        return type(x).__name__ if isinstance(x, (str, bytes)) else "other"

    kinds = {kind(x) for x in items}
    if len(kinds) > 1 or "other" in kinds:
        raise CelError("no such overload: list elements are not comparable")
    return list(items)


def _is_sorted(items: Sequence[Any]) -> bool:
    values = _comparable(items)
    return all(a <= b for a, b in itertools.pairwise(values))


def _sum(items: Sequence[Any]) -> Any:
    if not items:
        return 0
    _comparable(items)
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in items):
        raise CelError("no such overload: sum() of non-numeric elements")
    return sum(items)


def _min_max(pick: Callable[..., Any]) -> Callable[[Sequence[Any]], Any]:
    def run(items: Sequence[Any]) -> Any:
        if not items:
            raise CelError(f"{pick.__name__}(list) cannot be applied to an empty list")
        return pick(_comparable(items))
    return run


def _index_of(items: Sequence[Any], value: Any) -> int:
    for i, item in enumerate(items):
        if _equal(item, value):
            return i
    return -1


def _last_index_of(items: Sequence[Any], value: Any) -> int:
    for i in range(len(items) - 1, -1, -1):
        if _equal(items[i], value):
            return i
    return -1


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


# RE2 (what Kubernetes compiles regexes with) has no backreferences and no lookaround
_NOT_RE2 = re.compile(r"\\[1-9]|\(\?[=!<]|\(\?P=")


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    if _NOT_RE2.search(pattern):
        raise CelError(f"invalid regex {pattern!r}: backreferences and lookaround are not "
                       "RE2 syntax")
    try:
        return re.compile(pattern)
    except re.error as err:
        raise CelError(f"invalid regex {pattern!r}: {err}") from err


def _find(text: str, pattern: str) -> str:
    m = _regex(pattern).search(text)
    return m.group(0) if m else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    out = [m.group(0) for m in _regex(pattern).finditer(text)]
    return out if limit < 0 else out[:limit]


def _sets_contains(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return all(any(_equal(x, y) for y in a) for x in b)


def _sets_equivalent(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return _sets_contains(a, b) and _sets_contains(b, a)


def _sets_intersects(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return any(any(_equal(x, y) for y in a) for x in b)


# --- the environment ----------------------------------------------------------------------------


def _safe(impl: Callable[..., Any]) -> Callable[..., Any]:
    """Library errors become CEL errors with the message; nothing else leaks out."""
    @functools.wraps(impl)
    def run(*args: Any) -> Any:
        try:
            return impl(*args)
        except (CelError, ValueError, ArithmeticError, TypeError) as err:
            raise ValueError(str(err)) from None
    return run


def _declarations(cel: Any) -> tuple[list[Any], Any]:
    T = cel.Type
    S, B, INT, D, DYN = T.STRING, T.BOOL, T.INT, T.DOUBLE, T.DYN
    # IP and CIDR are one message type (kubernetes.IP, a CIDR has a prefix): the runtime can
    # register string() for one message type only
    Q, U, IP, SV = (T(f"{_PACKAGE}.{n}") for n in ("Quantity", "URL", "IP", "Semver"))
    CIDR = IP
    L = T.List(DYN)
    LS = T.List(S)
    decls: dict[str, list[Any]] = {}
    extended: dict[str, list[Any]] = {}  # overloads of names the strings extension declares
    impls: dict[tuple[str, bool, tuple[str, ...]], dict[str, Callable[..., Any]]] = {}

    def fn(name: str, oid: str, ret: Any, params: list[Any], impl: Callable[..., Any],
           member: bool = False) -> None:
        # the runtime tells messages apart only at run time: overloads whose parameters differ
        # only in which Kubernetes type they take share one implementation, which dispatches
        runtime_key = (name, member, tuple("message" if p.is_message() else p.name()
                                           for p in params))
        first = runtime_key not in impls
        table = impls.setdefault(runtime_key, {})
        table[(params[0] if member else params[-1]).name() if params else ""] = impl
        if first:
            overload = cel.Overload(oid, ret, params, is_member=member,
                                    impl=_safe(_dispatch(table, member)))
        else:  # declared for the type checker; the first one's implementation runs it
            overload = cel.Overload(oid, ret, params, is_member=member)
        (extended if name in ("indexOf", "lastIndexOf", "string", "hasValue", "value")
         else decls).setdefault(
            name, []).append(overload)

    # lists
    fn("isSorted", "list_is_sorted", B, [L], _is_sorted, True)
    fn("sum", "list_sum", DYN, [L], _sum, True)
    fn("min", "list_min", DYN, [L], _min_max(min), True)
    fn("max", "list_max", DYN, [L], _min_max(max), True)
    fn("indexOf", "list_index_of", INT, [L, DYN], _index_of, True)
    fn("lastIndexOf", "list_last_index_of", INT, [L, DYN], _last_index_of, True)
    # regex
    fn("find", "string_find", S, [S, S], _find, True)
    fn("findAll", "string_find_all", LS, [S, S], _find_all, True)
    fn("findAll", "string_find_all_n", LS, [S, S, INT], _find_all, True)
    # url
    fn("url", "string_to_url", U, [S], _url)
    fn("isURL", "is_url_string", B, [S], _is_url)
    fn("getScheme", "url_get_scheme", S, [U], lambda u: _parse_url(_v(u)).scheme, True)
    fn("getHost", "url_get_host", S, [U], _host, True)
    fn("getHostname", "url_get_hostname", S, [U], _hostname, True)
    fn("getPort", "url_get_port", S, [U], _port, True)
    fn("getEscapedPath", "url_get_escaped_path", S, [U],
       lambda u: urllib.parse.quote(urllib.parse.unquote(_parse_url(_v(u)).path),
                                    safe="/:@!$&'()*+,;=-._~"), True)
    fn("getQuery", "url_get_query", T.Map(S, LS), [U], _query, True)
    # quantity
    fn("quantity", "string_to_quantity", Q, [S], _quantity)
    fn("isQuantity", "is_quantity_string", B, [S], _is_quantity)
    fn("sign", "quantity_sign", INT, [Q], lambda q: _sign(_qv(q)), True)
    fn("isInteger", "quantity_is_integer", B, [Q], _q_is_integer, True)
    fn("asInteger", "quantity_as_integer", INT, [Q], _q_as_integer, True)
    fn("asApproximateFloat", "quantity_as_float", D, [Q], lambda q: float(_qv(q)), True)
    fn("add", "quantity_add", Q, [Q, Q], lambda a, b: _qty(_qv(a) + _q_other(b)), True)
    fn("add", "quantity_add_int", Q, [Q, INT], lambda a, b: _qty(_qv(a) + _q_other(b)), True)
    fn("sub", "quantity_sub", Q, [Q, Q], lambda a, b: _qty(_qv(a) - _q_other(b)), True)
    fn("sub", "quantity_sub_int", Q, [Q, INT], lambda a, b: _qty(_qv(a) - _q_other(b)), True)
    fn("compareTo", "quantity_compare_to", INT, [Q, Q],
       lambda a, b: _compare(_qv(a), _qv(b)), True)
    fn("isGreaterThan", "quantity_is_greater_than", B, [Q, Q],
       lambda a, b: _qv(a) > _qv(b), True)
    fn("isLessThan", "quantity_is_less_than", B, [Q, Q], lambda a, b: _qv(a) < _qv(b), True)
    # ip and cidr
    fn("ip", "string_to_ip", IP, [S], _ip)
    fn("isIP", "is_ip", B, [S], _is_ip)
    fn("ip.isCanonical", "ip_is_canonical", B, [S], _is_canonical)
    fn("family", "ip_family", INT, [IP], lambda i: _ipv(i).version, True)
    fn("isUnspecified", "ip_is_unspecified", B, [IP], lambda i: _ipv(i).is_unspecified, True)
    fn("isLoopback", "ip_is_loopback", B, [IP], lambda i: _ipv(i).is_loopback, True)
    fn("isLinkLocalMulticast", "ip_is_link_local_multicast", B, [IP],
       lambda i: _ipv(i).is_multicast and _ipv(i) in ipaddress.ip_network(
           "224.0.0.0/24" if _ipv(i).version == 4 else "ff02::/16"), True)
    fn("isLinkLocalUnicast", "ip_is_link_local_unicast", B, [IP],
       lambda i: _ipv(i).is_link_local and not _ipv(i).is_multicast, True)
    fn("isGlobalUnicast", "ip_is_global_unicast", B, [IP], _global_unicast, True)
    fn("cidr", "string_to_cidr", CIDR, [S], _cidr)
    fn("isCIDR", "is_cidr", B, [S], _is_cidr)
    fn("containsIP", "cidr_contains_ip_string", B, [CIDR, S], _contains_ip, True)
    fn("containsIP", "cidr_contains_ip_ip", B, [CIDR, IP],
       lambda c, o: _contains_ip(c, o) if "/" not in _v(o) else _no_overload(), True)
    fn("containsCIDR", "cidr_contains_cidr_string", B, [CIDR, S], _contains_cidr, True)
    fn("containsCIDR", "cidr_contains_cidr", B, [CIDR, CIDR],
       lambda c, o: _contains_cidr(c, o) if "/" in _v(o) else _no_overload(), True)

    fn("ip", "cidr_ip", IP, [CIDR], lambda c: _make("IP", v=str(_parse_cidr(
        _v(c))[0]) if _net(c) else ""), True)
    fn("masked", "cidr_masked", CIDR, [CIDR], lambda c: _make("IP", v=str(_net(c))), True)
    fn("prefixLength", "cidr_prefix_length", INT, [CIDR], lambda c: _net(c).prefixlen, True)
    # semver
    fn("semver", "string_to_semver", SV, [S], _parse_semver)
    fn("semver", "string_bool_to_semver", SV, [S, B], _parse_semver)
    fn("isSemver", "is_semver", B, [S], _is_semver)
    fn("isSemver", "is_semver_normalize", B, [S, B], _is_semver)
    fn("major", "semver_major", INT, [SV], lambda s: s.gitops_checker_major, True)
    fn("minor", "semver_minor", INT, [SV], lambda s: s.gitops_checker_minor, True)
    fn("patch", "semver_patch", INT, [SV], lambda s: s.gitops_checker_patch, True)
    fn("compareTo", "semver_compare_to", INT, [SV, SV],
       lambda a, b: _compare(_semver_key(a), _semver_key(b)), True)
    fn("isGreaterThan", "semver_is_greater_than", B, [SV, SV],
       lambda a, b: _semver_key(a) > _semver_key(b), True)
    fn("isLessThan", "semver_is_less_than", B, [SV, SV],
       lambda a, b: _semver_key(a) < _semver_key(b), True)
    # format (Kubernetes 1.31+): validate gives an optional list of errors; the optional values
    # are messages here with the optional members they are used with
    F, OPT = T(f"{_PACKAGE}.Format"), T(f"{_PACKAGE}.Optional")
    for name in FORMATS:
        fn(f"format.{name}", f"format_{name}", F, [], functools.partial(_make, "Format", v=name))
    fn("format.named", "format_named", OPT, [S],
       lambda n: _make("Optional", v=f"format:{n}" if n in FORMATS else ""))
    fn("validate", "format_validate", OPT, [F, S], _validate, True)
    fn("hasValue", "k8s_optional_has_value", B, [OPT], lambda o: bool(_v(o)), True)
    fn("value", "k8s_optional_value", DYN, [OPT], _optional_value, True)
    # sets (cel-go ext.Sets)
    fn("sets.contains", "list_sets_contains_list", B, [L, L], _sets_contains)
    fn("sets.equivalent", "list_sets_equivalent_list", B, [L, L], _sets_equivalent)
    fn("sets.intersects", "list_sets_intersects_list", B, [L, L], _sets_intersects)
    # string() of Kubernetes types: overloads of a standard function
    fn("string", "ip_to_string", S, [IP], _v)
    # an extension may add overloads to declared functions (indexOf of the strings
    # extension, string()); plain functions may declare overloads without an implementation
    return ([cel.FunctionDecl(name, overloads) for name, overloads in decls.items()],
            cel.CelExtension("gitops_checker_kubernetes", [
                cel.FunctionDecl(name, overloads) for name, overloads in extended.items()]))


def _dispatch(table: Mapping[str, Callable[..., Any]], member: bool) -> Callable[..., Any]:
    """One implementation for overloads that differ in the Kubernetes type they take."""
    def run(*args: Any) -> Any:
        if not args:
            return table[""]()
        subject = args[0] if member else args[-1]
        descriptor = getattr(subject, "DESCRIPTOR", None)
        name = descriptor.full_name if descriptor is not None else None
        impl = table.get(name) if name else None
        if impl is None:
            impl = next((f for key, f in table.items() if not key.startswith(_PACKAGE + ".")),
                        None)
        if impl is None:
            raise CelError("no matching overload")
        return impl(*args)
    return run


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?"
                                r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _pattern(pattern: re.Pattern[str], limit: int, what: str,
             example: str) -> Callable[[str], list[str]]:
    def check(value: str) -> list[str]:
        out = []
        if len(value) > limit:
            out.append(f"must be no more than {limit} characters")
        if not pattern.match(value):
            out.append(f"a {what} must match the regex {pattern.pattern[1:-1]!r} "
                       f"(e.g. {example!r})")
        return out
    return check


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """The *Prefix formats: a trailing '-' is allowed (generateName), as Kubernetes masks it."""
    return lambda value: check(value[:-1] + "a" if value.endswith("-") else value)


def _qualified_name(value: str) -> list[str]:
    prefix, slash, name = value.rpartition("/")
    out = []
    if slash and not prefix:
        out.append("prefix part must be non-empty")
    elif slash:
        out += [f"prefix part {e}" for e in _FORMAT_CHECKS["dns1123Subdomain"](prefix)]
    if not name:
        out.append("name part must be non-empty")
    else:
        out += [f"name part {e}" for e in _pattern(_QUALIFIED, 63, "qualified name",
                                                  "MyName")(name)]
    return out


def _parses(check: Callable[[str], Any], what: str) -> Callable[[str], list[str]]:
    def run(value: str) -> list[str]:
        try:
            check(value)
        except (ValueError, CelError, binascii.Error):
            return [f"must be a valid {what}"]
        return []
    return run


def _date(value: str) -> None:
    if not _DATE.match(value):
        raise ValueError(value)
    datetime.date.fromisoformat(value)


def _datetime(value: str) -> None:
    if not _DATETIME.match(value):
        raise ValueError(value)
    datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


_FORMAT_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": _pattern(_DNS1123_LABEL, 63, "lowercase RFC 1123 label", "my-name"),
    "dns1123Subdomain": _pattern(_DNS1123_SUBDOMAIN, 253, "lowercase RFC 1123 subdomain",
                                 "example.com"),
    "dns1035Label": _pattern(_DNS1035_LABEL, 63, "DNS-1035 label", "my-name"),
    "labelValue": lambda v: [] if v == "" else _pattern(_QUALIFIED, 63, "valid label value",
                                                        "MyValue")(v),
    "uri": _parses(lambda v: _parse_url(v), "URI"),
    "uuid": _parses(lambda v: None if _UUID.match(v) else int("x"), "UUID"),
    "byte": _parses(lambda v: base64.b64decode(v, validate=True), "base64 string"),
    "date": _parses(_date, "RFC 3339 full-date"),
    "datetime": _parses(_datetime, "RFC 3339 date-time"),
}
_FORMAT_CHECKS["qualifiedName"] = _qualified_name
for _name in ("dns1123Label", "dns1123Subdomain", "dns1035Label"):
    _FORMAT_CHECKS[f"{_name}Prefix"] = _prefix(_FORMAT_CHECKS[_name])
FORMATS = tuple(sorted(_FORMAT_CHECKS))


def _validate(fmt: Any, value: str) -> Any:
    errors = _FORMAT_CHECKS[_v(fmt)](value)
    return _make("Optional", v="errors:" + "\n".join(errors) if errors else "")


def _optional_value(optional: Any) -> Any:
    kind, _, value = _v(optional).partition(":")
    if not kind:
        raise CelError("optional.none() dereference")
    if kind == "format":
        return _make("Format", v=value)
    return value.split("\n")


def _no_overload() -> Any:
    raise CelError("no such overload")


def _global_unicast(message: Any) -> bool:
    ip = _ipv(message)
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local:
        return False
    return not (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"))


@dataclass(frozen=True)
class Environment:
    """A compiled CEL environment with the given variables (all ``dyn``)."""

    env: Any
    variables: tuple[str, ...]

    def activation(self, data: Mapping[str, Any]) -> Any:
        """The variables bound once for several evaluations."""
        return self.env.Activation(data)

    def compile(self, expression: str, what: str) -> Any:
        """``expression`` type-checked and compiled; PolicyError names ``what`` it is."""
        if not isinstance(expression, str) or not expression.strip():
            raise PolicyError(f"{what}: the expression is empty")
        if len(expression.encode()) > MAX_EXPRESSION:
            raise PolicyError(f"{what}: the expression is longer than {MAX_EXPRESSION} bytes")
        if _AUTHORIZER.search(expression):
            raise Unsupported(f"{what} calls the authorizer, which cannot be decided offline "
                              "(it asks the API server's authorizer): not evaluated")
        try:
            return self.env.compile(expression)
        except RuntimeError as err:
            raise PolicyError(f"{what} does not compile: {_clean(str(err))}") from err


def _clean(message: str) -> str:
    return re.sub(r"\s*\[[A-Z_]+\]$", "", message.removeprefix("INVALID_ARGUMENT: ")).strip()


@functools.cache
def environment(variables: tuple[str, ...]) -> Environment:
    """The Kubernetes CEL environment declaring ``variables`` (cached: built once)."""
    cel = _cel()
    from cel_expr_python.ext import ext_bindings, ext_encoders, ext_optional, ext_strings

    functions, extension = _declarations(cel)
    env = cel.NewEnv(
        _pool()[0], variables={name: cel.Type.DYN for name in variables},
        extensions=[ext_strings.ExtStrings(version=2), ext_optional.ExtOptional(),
                    ext_bindings.ExtBindings(), ext_encoders.ExtEncoders(), extension],
        functions=functions,
    )
    return Environment(env, variables)


def evaluate(program: Any, data: Any) -> tuple[Any, str | None]:
    """(value as plain data, None) or (None, error message) for one evaluation; ``data`` is a
    mapping of the variables or an ``Environment.activation`` of them (cheaper when several
    expressions read the same values: each value is converted once per activation)."""
    try:
        result = program.eval(data=data) if isinstance(data, Mapping) else program.eval(data)
    except RuntimeError as err:
        text = _clean(str(err).removeprefix("INTERNAL: "))
        if "Iteration budget exceeded" in text:
            text = (f"the evaluation exceeded the CEL runtime's budget of {ITERATION_BUDGET} "
                    "comprehension iterations")
        return None, text
    if result.type() == _cel().Type.ERROR:
        return None, _clean(str(result.value()).split(": ", 1)[-1])
    try:
        return result.plain_value(), None
    except (RuntimeError, TypeError, ValueError):  # a value without a plain form (a type)
        return _plain(result.value()), None


def is_type(value: Any) -> bool:
    """Whether ``value`` is a CEL type value (``type(x)``)."""
    return isinstance(value, _cel().Type)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v.value() if hasattr(v, "value") and callable(v.value) else v)
                for v in value]
    if isinstance(value, dict):
        return {k: _plain(v.value() if hasattr(v, "value") and callable(v.value) else v)
                for k, v in value.items()}
    return value
