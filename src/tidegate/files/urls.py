"""The URL type of the download path: ``yarl.URL``, made once from a file object's text.

aiohttp carries the bytes and takes a ``yarl.URL``; the fetcher checks, pins and sends
that same object, so the host that is checked is the host aiohttp connects to (one
parse, one object, no conversion in between). Text becomes a URL only here, at the
edge, normalised as httpx (which carried these requests before) and browsers do, so
origins see the same request line as before:

* characters a path or query may not hold are percent-encoded (UTF-8, WHATWG
  percent-encode sets); escapes already present are kept byte for byte (yarl's own
  parser decodes ``%2F`` in a query, which breaks signed URLs);
* ``.`` and ``..`` path segments are removed; the fragment is dropped (never sent);
* scheme and host are lowercased, a non-ASCII host is IDNA-encoded, a default port
  is dropped;
* refused (:class:`InvalidUrl`): ASCII control characters anywhere (tab, CR and LF
  included), leading whitespace, a host other than letters, digits, ``-``, ``_`` and
  ``.`` or an IP literal (no IPv6 zone), a dotted-quad host that is not an IPv4
  address, a bad port.

Userinfo is kept (quoted) so that the fetcher can refuse it with its own message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urljoin

import yarl

__all__ = ["InvalidUrl", "join_url", "parse_url", "scheme_of", "with_params"]

MAX_URL_LENGTH: Final = 65536
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What the WHATWG percent-encode sets encode (with all non-ASCII); ``%`` is kept, so
# existing escapes stay as they are (as httpx does).
_PATH_UNSAFE = re.compile(r"[^\x21-\x7e]|[\"#<>?`{}]")
_QUERY_UNSAFE = re.compile(r"[^\x21-\x7e]|[\"#<>]")
_USERINFO_UNSAFE = re.compile(r"[^\x21-\x7e]|[\"#<>?`{}/:;=@\[\\\]^|]")
_HOST_NAME = re.compile(r"^[a-z0-9_.-]+$")
_DOTTED_QUAD = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


class InvalidUrl(ValueError):
    """The text is not a URL the fetcher can send (the message never quotes it)."""


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _quote(text: str, unsafe: re.Pattern[str]) -> str:
    return unsafe.sub(_percent, text) if unsafe.search(text) else text


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 on an absolute path (httpx's ``normalize_path``)."""
    if "." not in path:
        return path
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    output: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if output and output != [""]:
                output.pop()
        else:
            output.append(segment)
    return "/".join(output)


def _host(raw: str | None) -> str:
    """The host as sent (lowercase ASCII, IDNA; IPv6 without brackets); ``""`` if none."""
    if not raw:
        return ""
    if ":" in raw:
        if "%" in raw:
            raise InvalidUrl("IPv6 zone identifiers are not allowed")
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            raise InvalidUrl("invalid IPv6 address") from None
        return raw.lower()
    host = raw.lower()
    if not host.isascii():
        try:
            host = yarl.URL.build(host=host).raw_host or ""
        except ValueError:  # UnicodeError: not a valid IDNA name
            raise InvalidUrl("invalid international host name") from None
    if _DOTTED_QUAD.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidUrl("invalid IPv4 address") from None
    if not _HOST_NAME.match(host):
        raise InvalidUrl("invalid host name")
    return host


def _build(scheme: str, user: str | None, password: str | None, host: str,
           port: int | None, path: str, query: str) -> yarl.URL:
    netloc_host = f"[{host}]" if ":" in host else host
    return yarl.URL.build(scheme=scheme, user=user, password=password, host=netloc_host,
                          port=port, path=path, query_string=query, encoded=True)


def parse_url(text: str) -> yarl.URL:
    """``text`` as the normalised, percent-encoded ``yarl.URL`` the fetcher sends.

    The result may lack a host or have any scheme: the fetcher's policy decides.
    Raises :class:`InvalidUrl`.
    """
    if not isinstance(text, str):
        raise InvalidUrl("a URL must be text")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidUrl("URL too long")
    if _CONTROL.search(text) or text[:1].isspace():
        raise InvalidUrl("control characters or leading whitespace in the URL")
    try:
        # encoded=True: split only, nothing decoded or re-quoted by yarl.
        raw = yarl.URL(text, encoded=True)
        port = raw.explicit_port
        scheme = raw.scheme.lower()
        host = _host(raw.raw_host)
        user = None if raw.raw_user is None else _quote(raw.raw_user, _USERINFO_UNSAFE)
        password = (None if raw.raw_password is None
                    else _quote(raw.raw_password, _USERINFO_UNSAFE))
        path = _quote(_remove_dot_segments(raw.raw_path), _PATH_UNSAFE)
        query = _quote(raw.raw_query_string, _QUERY_UNSAFE)
    except UnicodeError:  # a lone surrogate: no UTF-8 form
        raise InvalidUrl("the URL is not valid text") from None
    except InvalidUrl:
        raise
    except ValueError:  # yarl: unbalanced brackets, bad port, backslash in authority
        raise InvalidUrl("the URL could not be parsed") from None
    if port is not None and port == DEFAULT_PORTS.get(scheme):
        port = None
    if not host:
        return yarl.URL.build(scheme=scheme, path=path, query_string=query, encoded=True)
    return _build(scheme, user, password, host, port, path, query)


def _param_text(value: Any) -> str:
    """A parameter value as httpx rendered it (``True`` -> ``"true"``, ``None`` -> ``""``)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def with_params(url: yarl.URL, params: Mapping[str, Any]) -> yarl.URL:
    """``url`` with ``params`` merged into its query (a key in ``params`` replaces it).

    The query is re-encoded as ``application/x-www-form-urlencoded`` (httpx's
    ``copy_merge_params``: the same bytes as before). A list value repeats its key.
    """
    merged: dict[str, list[str]] = parse_qs(url.raw_query_string, keep_blank_values=True)
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        merged[str(key)] = [_param_text(item) for item in values]
    query = urlencode([(key, item) for key, items in merged.items() for item in items])
    return _build(url.scheme, url.raw_user, url.raw_password, url.raw_host or "",
                  url.explicit_port, url.raw_path, query)


def join_url(base: yarl.URL, reference: str) -> yarl.URL:
    """The URL a ``Location`` (absolute or relative) points to from ``base``.

    Raises :class:`InvalidUrl` (control characters are refused before joining: the
    stdlib would silently drop tabs and newlines).
    """
    if _CONTROL.search(reference):
        raise InvalidUrl("control characters in the URL")
    try:
        joined = urljoin(str(base), reference.strip(" "))
    except ValueError:
        raise InvalidUrl("the URL could not be parsed") from None
    return parse_url(joined)


def scheme_of(text: str | yarl.URL) -> str:
    """The lowercased scheme of ``text`` (``""`` if it has none); never raises."""
    if isinstance(text, yarl.URL):
        return text.scheme
    match = _SCHEME.match(text) if isinstance(text, str) else None
    return match.group(1).lower() if match else ""
