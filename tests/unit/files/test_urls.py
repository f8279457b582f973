"""files/urls.py: text to yarl.URL at the edge, the same bytes on the wire as httpx sent."""

from __future__ import annotations

import httpx
import pytest
import yarl

from tidegate.files.storages import last_path_segment
from tidegate.files.urls import InvalidUrl, join_url, parse_url, scheme_of, with_params

# What origins received before (httpx built the request line): must not change.
SAME_AS_HTTPX = [
    "https://files.example.test/data/report.json?fixed=1",
    "http://h/echo?a=%2F%20b&c=d%3De&e=%E2%9C%93",  # escapes kept byte for byte
    "https://h/a%2Fb/c%2fd?X-Amz-Credential=A%2FB&sig=x%2By",  # a signed URL
    "http://h/a b?x=y z#frag",
    "http://bücher.de/ä?q=ö",
    "http://[::1]:8080/x",
    "http://[2001:DB8::1]/x",
    "HTTP://Example.COM/x",
    "http://h/%7e?x",
    "http://h",
    "http://h:8080",
    "http://h/x?a=1&a=2",
    "http://h/%zz?q=%",
    "http://h/%",
    "http://h/a/./b/../c",
    "http://h/../../x",
    "http://h/%2e%2e/x",
    "http://h:80/x",
    "https://h:443/x",
    "http://h/a\"b<c>{d}`e|f^g[h]",
    "http://h/?q=\"<>`{}|'",
    "http://127.0.0.1:99/x",
    "http://h/ä/ö?ü=ß",
    "http://h./x",
    "http://h/;x=1",
    "http://h/a?b?c/d",
    "http://h/~user/file.txt",
    "http://u:p@h/",
]


@pytest.mark.parametrize("text", SAME_AS_HTTPX)
def test_the_request_is_what_httpx_sent(text: str) -> None:
    ours, theirs = parse_url(text), httpx.URL(text)
    assert ours.raw_path_qs == theirs.raw_path.decode("ascii")
    assert ours.raw_host == theirs.raw_host.decode("ascii").lower()  # case: ours is lower
    assert ours.port == (theirs.port or {"http": 80, "https": 443}[theirs.scheme])
    assert ours.scheme == theirs.scheme
    assert ours.fragment == ""  # never sent


def test_an_empty_query_loses_its_question_mark() -> None:
    # The one known difference from httpx ("/p?" was sent as is); origins do not care.
    assert parse_url("http://h/p?").raw_path_qs == "/p"


@pytest.mark.parametrize("text", [
    "http://h/a\tb", "http://h/a\nb", "http://h/\x00", "http://h/\x7f", " http://h/",
    "http://ho st/", "http://h_(x)/", "http://h!/", "http://[::1", "http://[fe80::1%25eth0]/",
    "http://[zz::1]/", "http://01.02.03.04/", "http://256.1.1.1/", "http://h:99999/",
    "http://h:x/", "http://h\\@evil/", "http://ä..com/", "http://h/" + "a" * 70_000,
])
def test_refusals(text: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        parse_url(text)
    assert "h/" not in str(caught.value) and "evil" not in str(caught.value)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidUrl):
        parse_url(b"http://h/")  # type: ignore[arg-type]


def test_the_result_is_sent_as_is() -> None:
    url = parse_url("http://h/a%2Fb?x=%2F")
    assert isinstance(url, yarl.URL)
    assert str(url) == "http://h/a%2Fb?x=%2F"
    assert parse_url(str(url)) == url  # parsing again changes nothing


@pytest.mark.parametrize(("base", "params"), [
    ("http://h/x?a=%2F&b=1", {"b": "2", "c": ["x y", "z/"]}),
    ("http://h/x", {"k": '{"a":1}', "t": True, "n": None, "i": 3}),
    ("http://h/x?a=1&b=2&a=3", {"z": "ü"}),
])
def test_params_merge_as_httpx_did(base: str, params: dict[str, object]) -> None:
    ours = with_params(parse_url(base), params)
    assert str(ours) == str(httpx.URL(base).copy_merge_params(params))


@pytest.mark.parametrize(("base", "location"), [
    ("http://h/a/b?x", "../c?d"),
    ("http://h/a/b", "//other/x y"),
    ("https://h/a", "http://bücher.de/ä"),
    ("http://h/a/b", "?q=1"),
    ("http://h/a/b", "/%2F x"),
    ("http://h:8080/a/b", "c"),
])
def test_redirect_targets_join_as_httpx_did(base: str, location: str) -> None:
    assert str(join_url(parse_url(base), location)) == str(httpx.URL(base).join(location))


def test_a_location_with_control_characters_is_refused() -> None:
    # The stdlib's urljoin would silently drop the tab.
    with pytest.raises(InvalidUrl):
        join_url(parse_url("http://h/"), "/a\tb")


def test_scheme_of_never_raises() -> None:
    assert scheme_of("HTTPS://x") == "https"
    assert scheme_of("http://[bad") == "http"
    assert scheme_of("no scheme") == ""
    assert scheme_of(parse_url("http://h/")) == "http"


def test_last_path_segment_decodes() -> None:
    assert last_path_segment(parse_url("http://h/dir/r%C3%A9sum%C3%A9.pdf?x=1")) == "résumé.pdf"
    assert last_path_segment("http://h/dir/a%20b") == "a b"
    assert last_path_segment("http://h:x/") == ""
