"""Lucene ``query_string`` syntax, parsed with ``luqum``, as a :mod:`query` tree.

Boolean logic follows ES: ``AND``/``OR``/``NOT`` (``AND`` binds tighter), ``+term``
must, ``-term`` must not; juxtaposed terms are joined by the default operator (OR
unless ``default_operator`` is AND); with OR, terms beside a ``+`` term are optional.
A purely negative query (``NOT a``) matches everything else. ``field:value`` matches
the whole value (case-insensitive) or the value's tokens as a phrase; free text
searches the ``fields``/``default_field`` given, else every string of the document.
Fuzzy (``~``) and regular expressions (``/re/``) are refused as unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

from tidegate.assets.query import (
    Bool,
    Exists,
    InvalidQueryError,
    Key,
    MatchAll,
    MatchNone,
    Node,
    Term,
    Text,
    UnsupportedQueryError,
    make_range,
    normalize_path,
    query_keys,
    tokenize,
    wildcard,
)

_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_WILD = re.compile(r"(?<!\\)(?:\\\\)*[*?]")
_MAX_DEPTH = 48


def unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def parse_query_string(text: str, fields: list[str], default_and: bool) -> Node:
    """The tree of a query_string query (``fields``: where free text looks; [] = all)."""
    if not text.strip():
        return MatchNone()
    try:
        parsed = parser.parse(text)
    except (ParseError, ValueError, TypeError, IndexError, RecursionError):
        raise InvalidQueryError("The query_string query could not be parsed.") from None
    return _Converter(fields, default_and).convert(parsed, None, 0)


class _Converter:
    def __init__(self, fields: list[str], default_and: bool) -> None:
        self.fields = fields
        self.default_and = default_and

    def convert(self, item: tree.Item, field: str | None, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise InvalidQueryError("The query string is nested too deeply.")
        depth += 1
        if isinstance(item, tree.SearchField):
            name = unescape(str(item.name))
            if name == "_exists_":
                return Exists(normalize_path(unescape(str(item.expr))))
            if name in ("*", "_all"):
                if isinstance(item.expr, tree.Word) and item.expr.value == "*":
                    return MatchAll()
                return self.convert(item.expr, None, depth)
            return self.convert(item.expr, normalize_path(name), depth)
        if isinstance(item, tree.Group | tree.FieldGroup):
            return self.convert(item.expr, field, depth)
        if isinstance(item, tree.Boost):
            return self.convert(item.expr, field, depth)
        if isinstance(item, tree.Plus):
            return self.convert(item.a, field, depth)
        if isinstance(item, tree.Not | tree.Prohibit):
            return Bool(must=(MatchAll(),), must_not=(self.convert(item.a, field, depth),))
        if isinstance(item, tree.AndOperation):
            return self._group(item.children, field, depth, default_and=True)
        if isinstance(item, tree.UnknownOperation):
            return self._group(item.children, field, depth, default_and=self.default_and)
        if isinstance(item, tree.OrOperation):
            return self._group(item.children, field, depth, default_and=False)
        if isinstance(item, tree.Word):
            return self._word(str(item.value), field)
        if isinstance(item, tree.Phrase):
            return self._phrase(unescape(str(item.value)[1:-1]), field)
        if isinstance(item, tree.Proximity):
            # "a b"~N: every token in one field (looser than a phrase).
            tokens = tuple(tokenize(unescape(str(item.term.value)[1:-1])))
            return self._on_fields(field, lambda f: Text(f, tokens, "all") if tokens
                                   else MatchNone())
        if isinstance(item, tree.Range):
            return self._range(field, item.low, item.include_low, item.high,
                               item.include_high)
        if isinstance(item, tree.From):
            return self._range(field, item.a, item.include, None, True)
        if isinstance(item, tree.To):
            return self._range(field, None, True, item.a, item.include)
        if isinstance(item, tree.Fuzzy):
            raise UnsupportedQueryError("Unsupported query_string syntax: fuzzy (~).")
        if isinstance(item, tree.Regex):
            raise UnsupportedQueryError("Unsupported query_string syntax: regular expression.")
        raise UnsupportedQueryError(
            f"Unsupported query_string syntax: {type(item).__name__}.")

    def _group(self, children: tuple[tree.Item, ...], field: str | None, depth: int, *,
               default_and: bool) -> Node:
        must: list[Node] = []
        should: list[Node] = []
        must_not: list[Node] = []
        for child in children:
            if isinstance(child, tree.Not | tree.Prohibit):
                must_not.append(self.convert(child.a, field, depth))
            elif isinstance(child, tree.Plus):
                must.append(self.convert(child.a, field, depth))
            elif default_and:
                must.append(self.convert(child, field, depth))
            else:
                should.append(self.convert(child, field, depth))
        if not must and not should:
            must.append(MatchAll())  # purely negative: everything else
        return Bool(tuple(must), tuple(should), tuple(must_not), 0 if must else 1)

    def _on_fields(self, field: str | None, build: Callable[[str | None], Node]) -> Node:
        if field is not None:
            return build(field)
        if not self.fields:
            return build(None)
        return Bool(should=tuple(build(f) for f in self.fields), minimum_should=1)

    def _word(self, raw: str, field: str | None) -> Node:
        if raw == "*":
            return self._on_fields(field, lambda f: Exists(f) if f else MatchAll())
        if _WILD.search(raw):
            return self._on_fields(field, lambda f: wildcard(f, raw, escapes=True))
        value = unescape(raw)
        tokens = tuple(tokenize(value))

        def build(path: str | None) -> Node:
            text: Node = (Text(path, tokens, "phrase" if len(tokens) > 1 else "any")
                          if tokens else MatchNone())
            if path is None:
                return text
            return Bool(should=(Term(path, tuple(query_keys(value))), text),
                        minimum_should=1)

        return self._on_fields(field, build)

    def _phrase(self, value: str, field: str | None) -> Node:
        tokens = tuple(tokenize(value))

        def build(path: str | None) -> Node:
            text: Node = (Text(path, tokens, "phrase" if len(tokens) > 1 else "any")
                          if tokens else MatchNone())
            if path is None:
                return text
            return Bool(should=(Term(path, tuple(query_keys(value))), text),
                        minimum_should=1)

        return self._on_fields(field, build)

    def _range(self, field: str | None, low: tree.Item | None, low_inclusive: bool,
               high: tree.Item | None, high_inclusive: bool) -> Node:
        if field is None:
            raise InvalidQueryError("A range in a query string needs a field.")
        return make_range(field, _bound(low), low_inclusive, _bound(high), high_inclusive)


def _bound(item: tree.Item | None) -> Key | None:
    if item is None:
        return None
    text = unescape(str(item.value))
    if isinstance(item, tree.Phrase):
        text = text[1:-1]
    if text == "*":
        return None
    try:
        number = float(text)
    except ValueError:
        return text.lower()
    return number if number == number and abs(number) != float("inf") else text.lower()
