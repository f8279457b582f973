"""A small evaluator for the Elasticsearch-style queries ocean.py and ocean.js send.

Supported: ``match_all``, ``term``/``terms``, ``match``/``match_phrase``,
``query_string`` (``field:value`` terms joined by AND/OR, or free text),
``bool`` (``must``, ``filter``, ``should``, ``must_not``), ``exists``, ``range``;
``from``/``size``; ``sort`` on any field. Field paths are dotted (``nft.state``,
``metadata.type``, ``services.datatokenAddress``); a path through a list matches
if any element matches; ``_id`` is the DID (Aquarius' Elasticsearch document id).
Backslash escapes in ``query_string`` (``did\\:op\\:…``) are honoured. Anything
else is a 400 naming the unsupported clause.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from tidegate.errors import BadRequestError


class UnsupportedQueryError(BadRequestError):
    code = "unsupported_query"


def _values(document: Any, path: str) -> list[Any]:
    if path == "_id" and isinstance(document, dict):
        # Aquarius stores each DDO under its DID as the Elasticsearch document id; the
        # Ocean Market filters with {"terms": {"_id": [did, ...]}}.
        return [document["id"]] if "id" in document else []
    current: list[Any] = [document]
    for part in path.removesuffix(".keyword").split("."):
        following: list[Any] = []
        for item in current:
            if isinstance(item, dict) and part in item:
                value = item[part]
                following.extend(value if isinstance(value, list) else [value])
        current = following
    return current


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _text_match(value: Any, text: str) -> bool:
    words = [w for w in re.split(r"\W+", text.lower()) if w]
    haystack = str(value).lower()
    return all(w in haystack for w in words)


def _all_strings(document: Any) -> Iterable[str]:
    if isinstance(document, dict):
        for value in document.values():
            yield from _all_strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _all_strings(value)
    elif document is not None:
        yield str(document)


def _query_string(document: Any, text: str) -> bool:
    clauses = re.split(r"\s+OR\s+", text.strip())
    for clause in clauses:
        terms = [t for t in re.split(r"\s+AND\s+", clause) if t]
        if all(_query_term(document, term.strip("() ")) for term in terms):
            return True
    return False


# query_string escapes reserved characters with a backslash: ocean.py's
# ``ocean.assets.search("did:op:…")`` sends ``did\:op\:…``, a free-text search for
# the DID, not a ``did`` field. Only an unescaped ``:`` separates field and value.
_FIELD_SEPARATOR = re.compile(r"(?<!\\):")
_ESCAPED = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def _query_term(document: Any, term: str) -> bool:
    parts = _FIELD_SEPARATOR.split(term, maxsplit=1)
    if len(parts) == 2 and not parts[0].startswith("http"):
        field, value = _unescape(parts[0]), _unescape(parts[1]).strip('"')
        return any(_same(v, value) or (value.endswith("*") and str(v).lower().startswith(
            value[:-1].lower())) for v in _values(document, field))
    text = _unescape(term).strip('"')
    return any(_text_match(s, text) for s in _all_strings(document))


def _range(document: Any, field: str, bounds: dict[str, Any]) -> bool:
    ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
           "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
    for value in _values(document, field):
        try:
            if all(ops[op](value, bound) for op, bound in bounds.items() if op in ops):
                return True
        except TypeError:
            continue
    return False


def matches(document: Any, query: Any) -> bool:
    """True if ``document`` satisfies the query clause."""
    if not isinstance(query, dict) or len(query) != 1:
        raise UnsupportedQueryError("Each query clause must be an object with one key.")
    kind, body = next(iter(query.items()))
    if kind == "match_all":
        return True
    if kind == "bool":
        if not isinstance(body, dict):
            raise UnsupportedQueryError("bool must be an object.")

        def listed(key: str) -> list[Any]:
            value = body.get(key, [])
            return value if isinstance(value, list) else [value]

        must = listed("must") + listed("filter")
        should, must_not = listed("should"), listed("must_not")
        return (all(matches(document, q) for q in must)
                and not any(matches(document, q) for q in must_not)
                and (not should or any(matches(document, q) for q in should)))
    if kind in ("term", "match", "match_phrase") and isinstance(body, dict):
        (field, wanted), = body.items()
        if isinstance(wanted, dict):
            wanted = wanted.get("value", wanted.get("query"))
        values = _values(document, field)
        if kind == "term":
            return any(_same(v, wanted) for v in values)
        return any(_same(v, wanted) or _text_match(v, str(wanted)) for v in values)
    if kind == "terms" and isinstance(body, dict):
        (field, wanted), = body.items()
        return any(_same(v, w) for v in _values(document, field) for w in wanted)
    if kind == "exists" and isinstance(body, dict):
        return bool(_values(document, str(body.get("field", ""))))
    if kind == "range" and isinstance(body, dict):
        (field, bounds), = body.items()
        return _range(document, field, bounds)
    if kind == "query_string" and isinstance(body, dict):
        return _query_string(document, str(body.get("query", "")))
    raise UnsupportedQueryError(f"Unsupported query clause: {kind}.")


def _sort_key(document: Any, field: str) -> tuple[int, Any]:
    values = _values(document, field)
    if not values:
        return (1, "")
    value = values[0]
    return (0, value if isinstance(value, (int, float)) else str(value))


def search(documents: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
    """Answer an ES-style search request with ``{"hits": {"hits": [...], "total": ...}}``."""
    query = request.get("query", {"match_all": {}})
    hits = [d for d in documents if matches(d, query)]
    sort = request.get("sort") or []
    for spec in reversed(sort if isinstance(sort, list) else [sort]):
        if isinstance(spec, str):
            field, order = spec, "asc"
        elif isinstance(spec, dict) and len(spec) == 1:
            field, how = next(iter(spec.items()))
            order = how.get("order", "asc") if isinstance(how, dict) else str(how)
        else:
            raise UnsupportedQueryError("Unsupported sort.")
        hits.sort(key=functools.partial(_sort_key, field=field), reverse=order == "desc")
    start = int(request.get("from", 0) or 0)
    size = int(request.get("size", 10) if request.get("size") is not None else 10)
    page = hits[start:start + size]
    return {
        "took": 0,
        "timed_out": False,
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": 1.0 if page else None,
            "hits": [{"_index": "aquarius", "_id": d.get("id"), "_score": 1.0, "_source": d}
                     for d in page],
        },
    }
