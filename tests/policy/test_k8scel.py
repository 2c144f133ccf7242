"""Kubernetes' CEL libraries, from the examples of the Kubernetes documentation
("CEL in Kubernetes", kubernetes.io/docs/reference/using-api/cel/), on Google's CEL runtime."""

from __future__ import annotations

import pytest

from checker.errors import PolicyError
from checker.policy import k8scel

ENV = k8scel.environment(("object",))


def run(expression: str, obj: object = None) -> object:
    value, error = k8scel.evaluate(ENV.compile(expression, "test"), {"object": obj})
    assert error is None, error
    return value


def error_of(expression: str, obj: object = None) -> str:
    value, error = k8scel.evaluate(ENV.compile(expression, "test"), {"object": obj})
    assert error is not None, value
    return error


# (expression, expected value): the documentation's examples, each true in Kubernetes
DOC_EXAMPLES = [
    # lists
    ("names.isSorted()", None),
    ("[1, 2, 3].isSorted()", True),
    ("['a', 'c', 'b'].isSorted()", False),
    ("[1, 2, 3].sum() == 6", True),
    ("[1, 2, 3].min() == 1", True),
    ("[1, 2, 3].max() == 3", True),
    ("[1, 2, 2, 3].indexOf(2) == 1", True),
    ("['a', 'b', 'b', 'c'].lastIndexOf('b') == 2", True),
    # regex
    ("'abc 123'.find('[0-9]+') == '123'", True),
    ("'123 abc 456'.findAll('[0-9]+') == ['123', '456']", True),
    ("'123 abc 456'.findAll('[0-9]+', 1) == ['123']", True),
    # url
    ("url('https://example.com:80/').getHost() == 'example.com:80'", True),
    ("url('https://example.com:80/').getHostname() == 'example.com'", True),
    ("url('https://example.com:80/').getPort() == '80'", True),
    ("url('https://example.com/path with spaces/').getEscapedPath() == "
     "'/path%20with%20spaces/'", True),
    ("url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == "
     "{'k1': ['a'], 'k2': ['b', 'c']}", True),
    ("url('https://example.com').getScheme() == 'https'", True),
    ("isURL('https://example.com')", True),
    ("isURL('example.com')", False),
    ("isURL('/absolute-path')", True),
    # quantity
    ("quantity('50000M').isInteger()", True),
    ("quantity('50k').asInteger() == 50000", True),
    ("quantity('50k').sign() == 1", True),
    ("quantity('50k').asApproximateFloat() == 50000.0", True),
    ("quantity('50k').add(quantity('20k')) == quantity('70k')", True),
    ("quantity('50k').sub(20000) == quantity('30k')", True),
    ("quantity('1Gi').isGreaterThan(quantity('1G'))", True),
    ("quantity('200M').compareTo(quantity('0.2G')) == 0", True),
    ("quantity('1.5').isInteger()", False),
    ("isQuantity('20')", True),
    ("isQuantity('20M')", True),
    ("isQuantity('20Mi')", True),
    ("isQuantity('20z')", False),
    ("quantity('1') == quantity('1000m')", True),
    # ip and cidr
    ("isIP('127.0.0.1')", True),
    ("isIP('::1')", True),
    ("isIP('127.0.0.256')", False),
    ("isIP('::ffff:127.0.0.1')", False),
    ("ip('127.0.0.1').family() == 4", True),
    ("ip('::1').family() == 6", True),
    ("ip.isCanonical('127.0.0.1')", True),
    ("ip.isCanonical('2001:db8:0:0:0:0:2:1')", False),
    ("ip('0.0.0.0').isUnspecified()", True),
    ("ip('127.0.0.1').isLoopback()", True),
    ("ip('224.0.0.1').isLinkLocalMulticast()", True),
    ("ip('169.254.169.254').isLinkLocalUnicast()", True),
    ("ip('192.168.0.1').isGlobalUnicast()", True),
    ("ip('255.255.255.255').isGlobalUnicast()", False),
    ("string(ip('::1')) == '::1'", True),
    ("isCIDR('192.168.0.0/16')", True),
    ("isCIDR('192.168.0.0')", False),
    ("cidr('192.168.0.0/16').containsIP(ip('192.168.1.1'))", True),
    ("cidr('192.168.0.0/16').containsIP('192.169.0.1')", False),
    ("cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))", True),
    ("cidr('192.168.0.0/16').containsCIDR('10.0.0.0/8')", False),
    ("cidr('192.168.0.0/24').ip() == ip('192.168.0.0')", True),
    ("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.0/16').prefixLength() == 16", True),
    ("string(cidr('192.168.0.0/24')) == '192.168.0.0/24'", True),
    # semver
    ("isSemver('1.0.0')", True),
    ("isSemver('v1.0.0')", False),
    ("isSemver('v1.0', true)", True),
    ("semver('1.2.3').major() == 1", True),
    ("semver('1.2.3').minor() == 2", True),
    ("semver('1.2.3').patch() == 3", True),
    ("semver('1.0.0').isLessThan(semver('1.1.0'))", True),
    ("semver('2.0.0').isGreaterThan(semver('1.0.0'))", True),
    ("semver('1.0.0-alpha').compareTo(semver('1.0.0')) == -1", True),
    ("semver('v01.1', true) == semver('1.1.0')", True),
    # format (Kubernetes 1.31+)
    ("!format.dns1123Label().validate('my-name').hasValue()", True),
    ("format.dns1123Label().validate('MyName').hasValue()", True),
    ("format.named('dns1123Label').hasValue()", True),
    ("format.named('nope').hasValue()", False),
    ("!format.named('dns1123Subdomain').value().validate('example.com').hasValue()", True),
    ("!format.dns1123LabelPrefix().validate('my-name-').hasValue()", True),
    ("format.dns1123Label().validate('my-name-').hasValue()", True),
    ("!format.dns1035Label().validate('my-name').hasValue()", True),
    ("format.dns1035Label().validate('1-name').hasValue()", True),
    ("!format.qualifiedName().validate('example.com/MyName').hasValue()", True),
    ("format.qualifiedName().validate('/name').hasValue()", True),
    ("!format.labelValue().validate('').hasValue()", True),
    ("!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()", True),
    ("!format.date().validate('2024-02-29').hasValue()", True),
    ("format.date().validate('2023-02-29').hasValue()", True),
    ("!format.datetime().validate('2024-01-01T00:00:00Z').hasValue()", True),
    ("!format.byte().validate('aGVsbG8=').hasValue()", True),
    ("!format.uri().validate('https://example.com/x').hasValue()", True),
    ("format.uri().validate('example.com').hasValue()", True),
    # sets (cel-go ext.Sets)
    ("sets.contains([1, 2, 3], [2, 3])", True),
    ("sets.equivalent([1, 2, 2], [2, 1])", True),
    ("sets.intersects([1, 2], [3])", False),
    # string, optional, bindings and base64 extensions
    ("'hello'.upperAscii() == 'HELLO'", True),
    ("'a,b,c'.split(',') == ['a', 'b', 'c']", True),
    ("['a', 'b'].join('-') == 'a-b'", True),
    ("'%s is %d'.format(['x', 1]) == 'x is 1'", True),
    ("cel.bind(x, 2, x * x) == 4", True),
    ("base64.encode(b'hello') == 'aGVsbG8='", True),
    ("{'a': 1}.?b.orValue(2) == 2", True),
]


@pytest.mark.parametrize(("expression", "expected"),
                         [e for e in DOC_EXAMPLES if e[1] is not None])
def test_documentation_examples(expression: str, expected: bool) -> None:
    assert run(expression) is expected


def test_errors_are_evaluation_errors_not_values() -> None:
    assert "empty list" in error_of("[].min()")
    assert "quantities must match" in error_of("quantity('abc').isInteger()")
    assert "parse error" in error_of("ip('1.2.3').family() == 4")
    assert "not a CIDR" in error_of("ip('1.2.3.4').masked() == cidr('1.2.3.0/24')")
    assert "RE2" in error_of("'aa'.find('(a)\\\\1') == ''")
    assert "cannot convert" in error_of("quantity('1.5').asInteger() == 1")
    assert "too large" in error_of("quantity('1e999999999').isInteger()")


def test_format_errors_are_a_list_of_messages() -> None:
    assert run("format.dns1123Label().validate(object).value()", "a" * 64) == [
        "must be no more than 63 characters"]
    assert "dereference" in error_of("format.dns1123Label().validate('ok').value() == []")


def test_undeclared_function_does_not_compile() -> None:
    with pytest.raises(PolicyError, match="undeclared reference to 'nope'"):
        ENV.compile("nope(object)", "test")


def test_authorizer_is_unsupported_not_a_pass() -> None:
    with pytest.raises(k8scel.Unsupported, match="authorizer"):
        ENV.compile("authorizer.group('').resource('pods').check('get').allowed()", "test")


def test_runaway_expression_is_an_error_not_a_hang() -> None:
    items = list(range(200))
    message = error_of("object.map(x, object.map(y, object.map(z, x + y + z))).size() > 0",
                       items)
    assert f"budget of {k8scel.ITERATION_BUDGET}" in message


def test_deeply_nested_expression_is_a_compile_error_not_a_crash() -> None:
    with pytest.raises(PolicyError, match="recursion"):
        ENV.compile("(" * 200 + "1" + ")" * 200, "test")


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(PolicyError, match="longer than"):
        ENV.compile("true && " * 1000 + "true", "test")


def test_kubernetes_types_have_their_type_names() -> None:
    assert str(run("type(quantity('1'))")) == "kubernetes.Quantity"
    assert run("type(semver('1.0.0')) == type(semver('2.0.0'))") is True
