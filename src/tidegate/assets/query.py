"""The Elasticsearch query language that ocean.py, ocean.js and the Ocean Market send.

A request body is parsed once into a small tree of :class:`Node` objects, which
:mod:`tidegate.assets.search_index` answers from its inverted index. The same tree can
also be checked against one parsed document (:func:`matches`): the index uses that to
verify phrases and ``nested`` clauses on the few candidates it cannot decide from its
postings alone, and :func:`search` (every document scanned) is the reference the tests
and the benchmark compare the index with.

Supported clauses: ``match_all``, ``match_none``, ``bool`` (``must``, ``filter``,
``should``, ``must_not``, ``minimum_should_match``), ``term``, ``terms``, ``ids``,
``match`` (analyzed; ``operator`` or/and), ``match_phrase``, ``multi_match``,
``prefix``, ``wildcard``, ``range`` (numbers, or strings such as ISO dates compared
as text), ``exists``, ``nested``, ``constant_score`` and ``query_string`` (full Lucene
syntax through ``luqum``: AND/OR/NOT, ``+``/``-``, groups, ``field:value``,
``field:(a OR b)``, phrases, ``*``/``?`` wildcards, ``[a TO b]``/``{a TO b}``,
``>=x``, ``_exists_:field``, backslash escapes, ``default_operator``,
``default_field``/``fields``). Request keys: ``query``, ``from``, ``size`` (at most
10,000, like ES' ``max_result_window``), ``sort``. Anything else in a query is a 400
``unsupported_query`` naming the clause.

Matching rules (Aquarius' dynamic mapping, simplified): field paths are dotted
(``nft.state``, ``services.datatokenAddress``), a ``.keyword`` suffix is ignored, a
path through a list matches if any element matches; ``_id`` is the DID. Strings are
compared case-insensitively; text is split into lowercase word tokens (``\\w+``), and
free text (no field) matches any string of the document. A query_string term with
several tokens (``did\\:op\\:…``, ``my-dataset-1``) must appear as a phrase in one
string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tidegate.errors import BadRequestError
from tidegate.types import digits_value

MAX_RESULT_WINDOW = 10_000
DEFAULT_SIZE = 10
# Strings longer than this are searchable as text only, like ES' keyword ignore_above.
MAX_KEYWORD = 256
MAX_TOKEN = 255
_MAX_DEPTH = 48
_MAX_QUERY_STRING = 8_192
_MAX_TERMS = 10_000


class UnsupportedQueryError(BadRequestError):
    code = "unsupported_query"


class InvalidQueryError(BadRequestError):
    code = "invalid_query"


# --- values, keys and tokens ------------------------------------------------------

Key = str | float
"""A normalized leaf value: lowercase string, or float for numbers; booleans are
``"true"``/``"false"`` (as ES accepts them)."""

_TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens of ``text`` (the analyzer of every text field).

    Tokens longer than ES' ``max_token_length`` (255: hex blobs such as encrypted
    ``files``) are dropped.
    """
    return [t for t in _TOKEN.findall(text.lower()) if len(t) <= MAX_TOKEN]


def leaf_key(value: Any) -> Key | None:
    """The index key of a stored leaf value; None for nulls and very long strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return value.lower() if len(value) <= MAX_KEYWORD else None
    return None


def leaf_tokens(value: Any) -> list[str]:
    """The text tokens of a stored leaf (strings, and numbers as written)."""
    if isinstance(value, str):
        return tokenize(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [str(int(value)) if float(value).is_integer() else str(value).lower()]


def query_keys(value: Any) -> list[Key]:
    """The index keys a term query value matches (``"1"`` also matches the number 1)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, int | float):
        number = float(value)
        text = str(int(number)) if number.is_integer() else str(value)
        return [number, text.lower()]
    if isinstance(value, str):
        keys: list[Key] = [value.lower()]
        number_value = _as_number(value)
        if number_value is not None:
            keys.append(number_value)
        return keys
    if value is None:
        return []
    raise InvalidQueryError("A term value must be a string, a number or a boolean.")


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def normalize_path(path: str) -> str:
    return path.removesuffix(".keyword")


def values_at(document: Any, path: str) -> list[Any]:
    """Every value at a dotted path, lists flattened (ES object flattening)."""
    if path == "_id":
        # Aquarius stores each DDO under its DID as the Elasticsearch document id; the
        # Ocean Market filters with {"terms": {"_id": [did, ...]}}.
        return [document["id"]] if isinstance(document, dict) and "id" in document else []
    current: list[Any] = [document]
    for part in path.split("."):
        following: list[Any] = []
        for item in current:
            if isinstance(item, dict) and part in item:
                value = item[part]
                following.extend(value if isinstance(value, list) else [value])
        current = following
    return current


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) for every non-null scalar under ``value``."""
    if isinstance(value, dict):
        for name, child in value.items():
            yield from leaves(child, f"{path}.{name}" if path else str(name))
    elif isinstance(value, list):
        for child in value:
            yield from leaves(child, path)
    elif value is not None:
        yield path, value


def _scalars(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, dict | list):
            yield from (leaf for _, leaf in leaves(value))
        elif value is not None:
            yield value


# --- the query tree ------------------------------------------------------------------

class Node:
    """A parsed query clause."""


@dataclass(frozen=True, eq=False)
class MatchAll(Node):
    pass


@dataclass(frozen=True, eq=False)
class MatchNone(Node):
    pass


@dataclass(frozen=True, eq=False)
class Bool(Node):
    must: tuple[Node, ...] = ()
    should: tuple[Node, ...] = ()
    must_not: tuple[Node, ...] = ()
    minimum_should: int = 0


@dataclass(frozen=True, eq=False)
class Term(Node):
    """Exact value (case-insensitive for strings) at ``path``, any of ``keys``."""

    path: str
    keys: tuple[Key, ...]


@dataclass(frozen=True, eq=False)
class Text(Node):
    """Analyzed text at ``path`` (None: any field): any, all or a phrase of tokens."""

    path: str | None
    tokens: tuple[str, ...]
    mode: str  # "any" | "all" | "phrase"


@dataclass(frozen=True, eq=False)
class Pattern(Node):
    """Prefix or wildcard over whole values and over tokens at ``path`` (None: any)."""

    path: str | None
    prefix: str  # the literal start of every match, lowercase
    regex: re.Pattern[str] | None  # None: a pure prefix query


@dataclass(frozen=True, eq=False)
class Range(Node):
    path: str
    low: Key | None
    low_inclusive: bool
    high: Key | None
    high_inclusive: bool


@dataclass(frozen=True, eq=False)
class Exists(Node):
    path: str


@dataclass(frozen=True, eq=False)
class Nested(Node):
    """``query`` must hold for one element of the list (or object) at ``path``."""

    path: str
    query: Node


def has_negation(node: Node) -> bool:
    """True if the clause contains a must_not (its flattened answer is no superset)."""
    if isinstance(node, Bool):
        return bool(node.must_not) or any(has_negation(n) for n in node.must + node.should)
    if isinstance(node, Nested):
        return has_negation(node.query)
    return False


# --- the request -------------------------------------------------------------------

@dataclass(frozen=True)
class SortKey:
    path: str  # "_doc" (index order) or a field path
    descending: bool


@dataclass(frozen=True)
class SearchRequest:
    query: Node
    start: int
    size: int
    sort: tuple[SortKey, ...]


def _integer(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be a non-negative integer.")
    if isinstance(value, str):  # ASCII digits only: "²" passes isdigit() but not int()
        value = digits_value(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise InvalidQueryError(f"{name} must be a non-negative integer.")
    return value


def parse_request(body: dict[str, Any]) -> SearchRequest:
    """Validate an ES search body; raises a 400 (invalid or unsupported query)."""
    query = parse_query(body.get("query", {"match_all": {}}))
    start = _integer(body.get("from"), "from", 0)
    size = min(_integer(body.get("size"), "size", DEFAULT_SIZE), MAX_RESULT_WINDOW)
    if start + size > MAX_RESULT_WINDOW:
        raise InvalidQueryError(
            f"Result window is too large: from + size must be at most {MAX_RESULT_WINDOW}.")
    return SearchRequest(query, start, size, parse_sort(body.get("sort")))


def parse_sort(sort: Any) -> tuple[SortKey, ...]:
    if sort is None:
        return ()
    specs: list[Any] = sort if isinstance(sort, list) else [sort]
    keys: list[SortKey] = []
    for spec in specs[:16]:
        items: list[tuple[str, Any]]
        if isinstance(spec, str):
            items = [(spec, None)]
        elif isinstance(spec, dict):
            items = list(spec.items())
        else:
            raise InvalidQueryError("Each sort entry must be a field name or an object.")
        for field, how in items:
            order = how.get("order", "asc") if isinstance(how, dict) else (how or "asc")
            if not isinstance(order, str) or order.lower() not in ("asc", "desc"):
                raise InvalidQueryError("A sort order must be asc or desc.")
            path = normalize_path(str(field))
            if path == "_score":
                continue  # every hit scores 1.0
            keys.append(SortKey("_doc" if path == "_doc" else path, order.lower() == "desc"))
    return tuple(keys)


# --- ES JSON clauses -----------------------------------------------------------------

def _name(kind: object) -> str:
    text = str(kind)
    return text if len(text) <= 40 else text[:40] + "…"


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _field_body(kind: str, body: Any,
                value_keys: tuple[str, ...]) -> tuple[str, Any, dict[str, Any]]:
    """(path, value, options) of ``{"field": value}`` or ``{"field": {"value": v, ...}}``."""
    if not isinstance(body, dict):
        raise InvalidQueryError(f"{kind} must be an object.")
    fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        raise InvalidQueryError(f"{kind} must name exactly one field.")
    (field, wanted), = fields.items()
    options: dict[str, Any] = {}
    if isinstance(wanted, dict):
        options = wanted
        for key in value_keys:
            if key in wanted:
                wanted = wanted[key]
                break
        else:
            raise InvalidQueryError(f"{kind} on {_name(field)} has no value.")
    return normalize_path(str(field)), wanted, options


def _minimum_should(value: Any, count: int) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidQueryError("minimum_should_match must be an integer or a percentage.")
    if isinstance(value, int):
        wanted = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d+%?", value.strip()):
        text = value.strip()
        if text.endswith("%"):
            wanted = int(count * abs(int(text[:-1])) / 100)
            wanted = wanted if not text.startswith("-") else count - wanted
        else:
            wanted = int(text)
    else:
        raise InvalidQueryError("minimum_should_match must be an integer or a percentage.")
    if wanted < 0:
        wanted = count + wanted
    return max(0, min(wanted, count + 1))


def _text_query(path: str | None, text: Any, mode: str) -> Node:
    """match / match_phrase on one field: exact value or analyzed text."""
    if not isinstance(text, str):
        return Term(path, tuple(query_keys(text))) if path else MatchNone()
    tokens = tuple(tokenize(text))
    if not tokens:
        return MatchNone()
    if len(tokens) == 1:
        mode = "any"
    text_node = Text(path, tokens, mode)
    if path is None:
        return text_node
    return Bool(should=(Term(path, tuple(query_keys(text))), text_node), minimum_should=1)


def parse_query(query: Any, depth: int = 0) -> Node:
    """The tree of one ES query clause."""
    if depth > _MAX_DEPTH:
        raise InvalidQueryError("The query is nested too deeply.")
    if not isinstance(query, dict) or len(query) != 1:
        raise InvalidQueryError("Each query clause must be an object with one key.")
    kind, body = next(iter(query.items()))
    if kind == "match_all":
        return MatchAll()
    if kind == "match_none":
        return MatchNone()
    if kind == "bool":
        if not isinstance(body, dict):
            raise InvalidQueryError("bool must be an object.")
        unknown = set(body) - {"must", "filter", "should", "must_not", "minimum_should_match",
                               "boost", "_name", "adjust_pure_negative"}
        if unknown:
            raise UnsupportedQueryError(f"Unsupported bool option: {_name(sorted(unknown)[0])}.")
        must = tuple(parse_query(q, depth + 1) for q in
                     _listed(body.get("must")) + _listed(body.get("filter")))
        should = tuple(parse_query(q, depth + 1) for q in _listed(body.get("should")))
        must_not = tuple(parse_query(q, depth + 1) for q in _listed(body.get("must_not")))
        default = 1 if should and not must else 0
        wanted = _minimum_should(body.get("minimum_should_match"), len(should))
        return Bool(must, should, must_not,
                    wanted if "minimum_should_match" in body else default)
    if kind == "term":
        path, wanted, _ = _field_body(kind, body, ("value",))
        return Term(path, tuple(query_keys(wanted)))
    if kind == "terms":
        if not isinstance(body, dict):
            raise InvalidQueryError("terms must be an object.")
        fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
        if len(fields) != 1:
            raise InvalidQueryError("terms must name exactly one field.")
        (field, wanted), = fields.items()
        if not isinstance(wanted, list) or len(wanted) > _MAX_TERMS:
            raise InvalidQueryError(f"terms needs a list of at most {_MAX_TERMS} values.")
        return Term(normalize_path(str(field)),
                    tuple(k for value in wanted for k in query_keys(value)))
    if kind == "ids":
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, list) or len(values) > _MAX_TERMS:
            raise InvalidQueryError("ids needs a list of values.")
        return Term("_id", tuple(k for value in values for k in query_keys(value)))
    if kind in ("match", "match_phrase"):
        path, wanted, options = _field_body(kind, body, ("query",))
        operator = str(options.get("operator", "or")).lower()
        if operator not in ("or", "and"):
            raise InvalidQueryError("match operator must be or / and.")
        mode = "phrase" if kind == "match_phrase" else ("all" if operator == "and" else "any")
        return _text_query(None if path in ("*", "_all") else path, wanted, mode)
    if kind == "multi_match":
        if not isinstance(body, dict) or "query" not in body:
            raise InvalidQueryError("multi_match needs a query.")
        operator = str(body.get("operator", "or")).lower()
        mode = "phrase" if body.get("type") == "phrase" else (
            "all" if operator == "and" else "any")
        names = [normalize_path(str(f).split("^")[0]) for f in _listed(body.get("fields"))]
        if not names or "*" in names:
            return _text_query(None, body["query"], mode)
        return Bool(should=tuple(_text_query(f, body["query"], mode) for f in names),
                    minimum_should=1)
    if kind == "prefix":
        path, wanted, _ = _field_body(kind, body, ("value", "prefix"))
        return Pattern(path, str(wanted).lower(), None)
    if kind == "wildcard":
        path, wanted, _ = _field_body(kind, body, ("value", "wildcard"))
        return wildcard(path, str(wanted), escapes=False)
    if kind == "range":
        if not isinstance(body, dict) or len(body) != 1:
            raise InvalidQueryError("range must name exactly one field.")
        (field, bounds), = body.items()
        if not isinstance(bounds, dict):
            raise InvalidQueryError("range bounds must be an object.")
        return _range(normalize_path(str(field)), bounds)
    if kind == "exists":
        field = body.get("field") if isinstance(body, dict) else None
        if not isinstance(field, str) or not field:
            raise InvalidQueryError("exists needs a field.")
        return Exists(normalize_path(field))
    if kind == "nested":
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise InvalidQueryError("nested needs a path and a query.")
        return Nested(normalize_path(body["path"]), parse_query(body.get("query"), depth + 1))
    if kind == "constant_score":
        if not isinstance(body, dict) or "filter" not in body:
            raise InvalidQueryError("constant_score needs a filter.")
        return parse_query(body["filter"], depth + 1)
    if kind == "query_string":
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise InvalidQueryError("query_string needs a query string.")
        from tidegate.assets.query_string import parse_query_string

        names = [normalize_path(str(f).split("^")[0]) for f in _listed(body.get("fields"))]
        if not names and isinstance(body.get("default_field"), str):
            names = [normalize_path(body["default_field"])]
        operator = str(body.get("default_operator", "or")).lower()
        if operator not in ("or", "and"):
            raise InvalidQueryError("default_operator must be OR or AND.")
        text = body["query"]
        if len(text) > _MAX_QUERY_STRING:
            raise InvalidQueryError("The query string is too long.")
        return parse_query_string(text, [f for f in names if f not in ("*", "_all")],
                                  operator == "and")
    raise UnsupportedQueryError(f"Unsupported query clause: {_name(kind)}.")


def _bound(value: Any) -> Key:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise InvalidQueryError("A range bound must be a number or a string.")
    if isinstance(value, int | float):
        return float(value)
    number = _as_number(value)
    return number if number is not None else str(value).lower()


def _range(path: str, bounds: dict[str, Any]) -> Node:
    unknown = set(bounds) - {"gt", "gte", "lt", "lte", "from", "to", "include_lower",
                             "include_upper", "format", "time_zone", "boost", "relation"}
    if unknown:
        raise UnsupportedQueryError(f"Unsupported range option: {_name(sorted(unknown)[0])}.")
    low: Key | None = None
    high: Key | None = None
    low_inclusive = high_inclusive = True
    if bounds.get("gte") is not None:
        low = _bound(bounds["gte"])
    elif bounds.get("gt") is not None:
        low, low_inclusive = _bound(bounds["gt"]), False
    elif bounds.get("from") is not None:
        low, low_inclusive = _bound(bounds["from"]), bool(bounds.get("include_lower", True))
    if bounds.get("lte") is not None:
        high = _bound(bounds["lte"])
    elif bounds.get("lt") is not None:
        high, high_inclusive = _bound(bounds["lt"]), False
    elif bounds.get("to") is not None:
        high, high_inclusive = _bound(bounds["to"]), bool(bounds.get("include_upper", True))
    return make_range(path, low, low_inclusive, high, high_inclusive)


def make_range(path: str, low: Key | None, low_inclusive: bool, high: Key | None,
               high_inclusive: bool) -> Node:
    if low is not None and high is not None and isinstance(low, float) != isinstance(high,
                                                                                    float):
        # One numeric and one text bound ("1" TO "b"): compare both as text.
        low, high = _text_bound(low), _text_bound(high)
    return Range(path, low, low_inclusive, high, high_inclusive)


def _text_bound(value: Key) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return value


def wildcard(path: str | None, pattern: str, *, escapes: bool) -> Node:
    """A wildcard query: ``*`` any run, ``?`` one character; backslash escapes if asked."""
    parts: list[str] = []  # regex pieces
    literal: list[str] = []  # the literal start, before the first wildcard
    tail: list[str] = []  # the unescaped characters after it
    chars = iter(pattern.lower())
    for char in chars:
        escaped = False
        if escapes and char == "\\":
            char, escaped = next(chars, "\\"), True
        if char in "*?" and not escaped:
            parts.append(".*" if char == "*" else ".")
            tail.append(char)
        else:
            parts.append(re.escape(char))
            (tail if tail else literal).append(char)
    start = "".join(literal)
    if not tail:
        return Pattern(path, start, re.compile(re.escape(start) + r"\Z", re.DOTALL))
    if not start and set(tail) == {"*"}:
        return Exists(path) if path else MatchAll()
    if set(tail) == {"*"}:
        return Pattern(path, start, None)  # a pure prefix
    return Pattern(path, start, re.compile("".join(parts) + r"\Z", re.DOTALL))


# --- one document ----------------------------------------------------------------------

def _tokens_by_leaf(document: Any, path: str | None) -> Iterator[list[str]]:
    if path is None:
        for _, leaf in leaves(document):
            yield leaf_tokens(leaf)
    else:
        for leaf in _scalars(values_at(document, path)):
            yield leaf_tokens(leaf)


def _contains_phrase(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    first = phrase[0]
    return any(tokens[i] == first and tuple(tokens[i:i + n]) == phrase
               for i in range(len(tokens) - n + 1))


def phrase_matches(document: Any, path: str | None, phrase: tuple[str, ...]) -> bool:
    return any(_contains_phrase(tokens, phrase) for tokens in _tokens_by_leaf(document, path))


def _text_matches(document: Any, node: Text) -> bool:
    if node.mode == "phrase":
        return phrase_matches(document, node.path, node.tokens)
    if node.mode == "any":
        wanted = set(node.tokens)
        return any(not wanted.isdisjoint(tokens)
                   for tokens in _tokens_by_leaf(document, node.path))
    # all: every token within one field (a path, across its list elements)
    by_path: dict[str, set[str]] = {}
    if node.path is None:
        for path, leaf in leaves(document):
            by_path.setdefault(path, set()).update(leaf_tokens(leaf))
    else:
        by_path[node.path] = {t for tokens in _tokens_by_leaf(document, node.path)
                              for t in tokens}
    return any(set(node.tokens) <= found for found in by_path.values())


def pattern_accepts(node: Pattern, text: str) -> bool:
    if not text.startswith(node.prefix):
        return False
    return node.regex is None or node.regex.match(text) is not None


def _pattern_matches(document: Any, node: Pattern) -> bool:
    scalars = (leaf for _, leaf in leaves(document)) if node.path is None else _scalars(
        values_at(document, node.path))
    for leaf in scalars:
        key = leaf_key(leaf)
        if isinstance(key, str) and pattern_accepts(node, key):
            return True
        if any(pattern_accepts(node, token) for token in leaf_tokens(leaf)):
            return True
    return False


def _less(a: Key, b: Key) -> bool:
    return a < b  # type: ignore[operator]  # same type: checked by the caller


def range_accepts(node: Range, key: Key) -> bool:
    low, high = node.low, node.high
    if low is not None:
        if isinstance(low, float) != isinstance(key, float):
            return False
        if _less(key, low) or (key == low and not node.low_inclusive):
            return False
    if high is not None:
        if isinstance(high, float) != isinstance(key, float):
            return False
        if _less(high, key) or (key == high and not node.high_inclusive):
            return False
    return True


def _with_only(document: Any, parts: list[str], element: Any) -> Any:
    if not parts:
        return element
    if not isinstance(document, dict):
        return document
    copy = dict(document)
    copy[parts[0]] = _with_only(document.get(parts[0]), parts[1:], element) if len(
        parts) > 1 else element
    return copy


def nested_elements(document: Any, path: str) -> list[Any]:
    return [v for v in values_at(document, path) if isinstance(v, dict)]


def matches(document: Any, node: Node) -> bool:
    """True if one parsed document satisfies the clause."""
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, MatchNone):
        return False
    if isinstance(node, Bool):
        if not all(matches(document, q) for q in node.must):
            return False
        if any(matches(document, q) for q in node.must_not):
            return False
        if node.minimum_should:
            hits = 0
            for q in node.should:
                hits += matches(document, q)
                if hits >= node.minimum_should:
                    return True
            return False
        return True
    if isinstance(node, Term):
        wanted = set(node.keys)
        return any(leaf_key(v) in wanted for v in _scalars(values_at(document, node.path)))
    if isinstance(node, Text):
        return _text_matches(document, node)
    if isinstance(node, Pattern):
        return _pattern_matches(document, node)
    if isinstance(node, Range):
        return any(key is not None and range_accepts(node, key)
                   for key in map(leaf_key, _scalars(values_at(document, node.path))))
    if isinstance(node, Exists):
        return any(True for _ in _scalars(values_at(document, node.path)))
    if isinstance(node, Nested):
        parts = node.path.split(".")
        return any(matches(_with_only(document, parts, element), node.query)
                   for element in nested_elements(document, node.path))
    raise UnsupportedQueryError(f"Unsupported query clause: {type(node).__name__}.")


# --- scanning every document (reference and baseline) -----------------------------------

def sort_value(document: Any, path: str, descending: bool) -> tuple[int, Any] | None:
    """ES' sort value of a multi-valued field: its minimum (asc) or maximum (desc)."""
    keys = [k for k in map(leaf_key, _scalars(values_at(document, path))) if k is not None]
    if not keys:
        return None
    ranked = [(0, k) if isinstance(k, float) else (1, k) for k in keys]
    return max(ranked) if descending else min(ranked)


def order(items: list[Any], sort: tuple[SortKey, ...], value: Any) -> list[Any]:
    """Stable multi-key sort, missing values last whatever the order.

    ``value(item, path, descending)`` gives an item's sort value, or None when missing.
    """
    for key in reversed(sort):
        if key.path == "_doc":
            if key.descending:
                items = items[::-1]
            continue
        present: list[tuple[Any, Any]] = []
        missing: list[Any] = []
        for item in items:
            v = value(item, key.path, key.descending)
            if v is None:
                missing.append(item)
            else:
                present.append((v, item))
        present.sort(key=lambda pair: pair[0], reverse=key.descending)
        items = [item for _, item in present] + missing
    return items


def response(total: int, page: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """ES' response shape; ``page`` holds (DID, _source) pairs."""
    return {
        "took": 0,
        "timed_out": False,
        "hits": {
            "total": {"value": total, "relation": "eq"},
            "max_score": 1.0 if page else None,
            "hits": [{"_index": "aquarius", "_id": did, "_score": 1.0, "_source": source}
                     for did, source in page],
        },
    }


def search(documents: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    """Answer an ES search body by checking every document (no index)."""
    request = parse_request(body)
    hits = [d for d in documents if matches(d, request.query)]
    if request.sort:
        hits = order(hits, request.sort, sort_value)
    page = hits[request.start:request.start + request.size]
    return response(len(hits), [(d.get("id"), d) for d in page])
