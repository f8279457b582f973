"""An in-memory inverted index over the stored DDOs, kept in sync by the store's feed.

``POST /api/aquarius/assets/query`` is answered from here, without parsing the stored
documents per query:

- **value postings**: per field path, per normalized leaf value (lowercase string of
  at most 256 characters, float, ``"true"``/``"false"``), the documents holding it
  (``term``, ``terms``, ``ids``, ``field:value``); the values of a path are also kept
  sorted, built on first use and rebuilt only after that path gained or lost a value
  (``range``, ``prefix``, ``wildcard``);
- **token postings**: per path, per lowercase word token (free text, ``match``);
- **exists postings**: per path and every prefix of it;
- **sort columns**: per (path, order), built on first use from the value postings
  (ES' min/max of a multi-valued field), then updated per changed document.

Postings are sets of small integers (one per DID, kept for the life of the process);
a value held by a single document is stored as that integer alone. Per document the
index keeps its DID and its JSON zlib-compressed (level 1), from which it renders the
page's ``_source`` (as a pre-serialized fragment: no parse, no re-encode), verifies
the few clauses postings cannot decide exactly (multi-token phrases: word order;
``nested``: one element must satisfy the whole clause), and removes a document's
old postings when it changes. Cost per DDO: its compressed JSON (about a third of the
text) plus a few bytes per distinct (path, value) and (path, token) pair it holds:
the figures measured at 100k DDOs are in docs/indexer.md.

Sync: every :meth:`Store.put_ddo` gives the row a new ``seq``; before answering, the
index asks the store for rows with a seq above the last one it applied (one indexed
query; nothing to read in the usual case), so a DDO written by the indexer, in this
process or in another replica sharing PostgreSQL, is in the very next answer.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import sys
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from tidegate.assets.query import (
    Bool,
    Exists,
    Key,
    MatchAll,
    MatchNone,
    Nested,
    Node,
    Pattern,
    Range,
    SearchRequest,
    Term,
    Text,
    UnsupportedQueryError,
    has_negation,
    leaf_key,
    leaf_tokens,
    leaves,
    matches,
    order,
    parse_request,
    pattern_accepts,
    phrase_matches,
    response,
    sort_value,
)
from tidegate.stores.base import Store

log = logging.getLogger(__name__)

Posting = int | set[int] | bytearray
"""One document (its ordinal), a few (a set), or many (a bitmap, bit i = ordinal i)."""

# A set costs ~30 bytes a member, a bitmap 1 bit per ordinal: past this many members a
# posting becomes a bitmap (12.5 KB at 100k documents).
_DENSE = 256
_BYTE_BITS = [tuple(j for j in range(8) if byte >> j & 1) for byte in range(256)]


def _setbit(bitmap: bytearray, ordinal: int) -> None:
    index = ordinal >> 3
    if index >= len(bitmap):
        bitmap.extend(bytes(index + 1 - len(bitmap) + len(bitmap) // 4))
    bitmap[index] |= 1 << (ordinal & 7)


def _bitmap(ordinals: Iterable[int]) -> bytearray:
    bitmap = bytearray()
    for ordinal in ordinals:
        _setbit(bitmap, ordinal)
    return bitmap


def _add(postings: dict[Any, Posting], key: Any, doc: int) -> bool:
    """Add ``doc`` under ``key``; True if the key is new."""
    posting = postings.get(key)
    if posting is None:
        postings[key] = doc
        return True
    if isinstance(posting, int):
        if posting != doc:
            postings[key] = {posting, doc}
    elif isinstance(posting, set):
        posting.add(doc)
        if len(posting) > _DENSE:
            postings[key] = _bitmap(posting)
    else:
        _setbit(posting, doc)
    return False


def _remove(postings: dict[Any, Posting], key: Any, doc: int) -> bool:
    """Remove ``doc`` from ``key``; True if the key is gone."""
    posting = postings.get(key)
    if posting is None:
        return False
    if isinstance(posting, int):
        if posting == doc:
            del postings[key]
            return True
        return False
    if isinstance(posting, set):
        posting.discard(doc)
        if len(posting) == 1:
            postings[key] = next(iter(posting))
        elif not posting:
            del postings[key]
            return True
        return False
    index = doc >> 3
    if index < len(posting):
        posting[index] &= ~(1 << (doc & 7)) & 0xFF
    if not any(posting):
        del postings[key]
        return True
    return False


def _from_ordinals(ordinals: list[int]) -> int:
    if len(ordinals) <= 4:
        bits = 0
        for ordinal in ordinals:
            bits |= 1 << ordinal
        return bits
    return int.from_bytes(_bitmap(ordinals), "little")


def _bits(posting: Posting | None) -> int:
    """A posting as an int bitmap (the form every query clause evaluates to)."""
    if posting is None:
        return 0
    if isinstance(posting, int):
        return 1 << posting
    if isinstance(posting, set):
        return _from_ordinals(list(posting))
    return int.from_bytes(posting, "little")


def _union(postings: Iterable[Posting | None]) -> int:
    ordinals: list[int] = []
    bits = 0
    for posting in postings:
        if posting is None:
            continue
        if isinstance(posting, int):
            ordinals.append(posting)
        elif isinstance(posting, set):
            ordinals.extend(posting)
        else:
            bits |= int.from_bytes(posting, "little")
    return bits | _from_ordinals(ordinals) if ordinals else bits


def _ordinals(bits: int, limit: int | None = None) -> list[int]:
    """The ordinals set in ``bits``, ascending (the first ``limit`` of them)."""
    data = bits.to_bytes((bits.bit_length() + 7) // 8, "little")
    found: list[int] = []
    index = 0
    size = len(data)
    while index < size:
        byte = data[index]
        if byte:
            base = index << 3
            found.extend([base + j for j in _BYTE_BITS[byte]])
            if limit is not None and len(found) >= limit:
                return found[:limit]
        index += 1
    return found


def _posting_ordinals(posting: Posting) -> Iterable[int]:
    if isinstance(posting, int):
        return (posting,)
    if isinstance(posting, set):
        return posting
    return _ordinals(int.from_bytes(posting, "little"))


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[tuple[str, bytes]]
    """(DID, DDO JSON) of the page, in order."""

    def render(self) -> dict[str, Any]:
        """ES' response; each ``_source`` is the stored JSON, embedded as is."""
        return response(self.total, [(did, orjson.Fragment(text)) for did, text in self.hits])

    @property
    def dids(self) -> list[str]:
        return [did for did, _ in self.hits]


def _entries(did: str, document: Any) -> tuple[set[tuple[str, Key]], set[tuple[str, str]],
                                                set[str]]:
    values: set[tuple[str, Key]] = {("_id", did.lower())}
    tokens: set[tuple[str, str]] = set()
    paths: set[str] = {"_id"}
    for path, leaf in leaves(document):
        key = leaf_key(leaf)
        if isinstance(key, str):
            # One string object per distinct value, whichever paths hold it (an NFT
            # address sits in nftAddress, nft.address and event.contract).
            key = sys.intern(key)
        if key is not None:
            values.add((path, key))
        paths.add(path)
        if not isinstance(leaf, str):
            continue  # a number's token is found through its value posting
        words = leaf_tokens(leaf)
        if len(words) == 1 and words[0] == key:
            continue  # a one-word value ("weather", "0xab…"): found through its value
        for token in words:
            tokens.add((path, token))
    exists = set(paths)
    for path in paths:
        while "." in path:
            path = path.rsplit(".", 1)[0]
            exists.add(path)
    return values, tokens, exists


class SearchIndex:
    """Answers ES search bodies over the store's DDOs (see the module docstring)."""

    def __init__(self, store: Store, *, batch: int = 500) -> None:
        self._store = store
        self._batch = batch
        self._seq = -1  # rows stored before the change feed existed have seq 0
        self._lock = asyncio.Lock()
        self._ords: dict[str, int] = {}
        self._dids: list[str] = []
        self._texts: list[bytes | None] = []
        self._live = bytearray()  # bitmap of the searchable ordinals
        self._count = 0
        self._values: dict[str, dict[Key, Posting]] = {}
        self._tokens: dict[str, dict[str, Posting]] = {}
        self._exists: dict[str, Posting] = {}
        self._sorted_values: dict[str, tuple[list[float], list[str]]] = {}
        self._sorted_tokens: dict[str, list[str]] = {}
        self._columns: dict[tuple[str, bool], dict[int, tuple[int, Key]]] = {}

    # --- sync -------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        """The last change applied."""
        return self._seq

    def __len__(self) -> int:
        return self._count

    async def refresh(self) -> int:
        """Apply every change the store has after the last one seen; how many."""
        applied = 0
        async with self._lock:
            while True:
                changes = await self._store.ddo_changes_since(self._seq, self._batch)
                for seq, did, text in changes:
                    self.apply(did, text)
                    self._seq = max(self._seq, seq)
                applied += len(changes)
                if len(changes) < self._batch:
                    return applied
                await asyncio.sleep(0)  # let requests run between batches of a build

    def apply(self, did: str, text: str) -> None:
        """Index the current version of one DDO (replacing any previous one)."""
        ordinal = self._ords.get(did)
        if ordinal is None:
            ordinal = len(self._dids)
            self._ords[did] = ordinal
            self._dids.append(did)
            self._texts.append(None)
        else:
            previous = self._document(ordinal)
            if previous is not None:
                self._unpost(ordinal, did, previous)
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.warning("search index: stored DDO %s is not JSON; not searchable", did)
            if self._texts[ordinal] is not None:
                self._count -= 1
            self._texts[ordinal] = None
            self._live[ordinal >> 3] &= ~(1 << (ordinal & 7)) & 0xFF
            self._update_columns(ordinal, None)
            return
        self._post(ordinal, did, document)
        if self._texts[ordinal] is None:
            self._count += 1
        self._texts[ordinal] = zlib.compress(text.encode(), 1)
        _setbit(self._live, ordinal)
        self._update_columns(ordinal, document)

    def _post(self, ordinal: int, did: str, document: Any) -> None:
        values, tokens, exists = _entries(did, document)
        for path, key in values:
            if _add(self._values.setdefault(path, {}), key, ordinal):
                self._sorted_values.pop(path, None)
        for path, token in tokens:
            if _add(self._tokens.setdefault(path, {}), token, ordinal):
                self._sorted_tokens.pop(path, None)
        for path in exists:
            _add(self._exists, path, ordinal)

    def _unpost(self, ordinal: int, did: str, document: Any) -> None:
        values, tokens, exists = _entries(did, document)
        for path, key in values:
            if _remove(self._values.get(path, {}), key, ordinal):
                self._sorted_values.pop(path, None)
        for path, token in tokens:
            if _remove(self._tokens.get(path, {}), token, ordinal):
                self._sorted_tokens.pop(path, None)
        for path in exists:
            _remove(self._exists, path, ordinal)

    def _update_columns(self, ordinal: int, document: Any) -> None:
        for (path, descending), column in self._columns.items():
            value = None if document is None else sort_value(document, path, descending)
            if path == "_id" and document is not None:
                value = (1, self._dids[ordinal].lower())
            if value is None:
                column.pop(ordinal, None)
            else:
                column[ordinal] = value

    def _text(self, ordinal: int) -> bytes | None:
        packed = self._texts[ordinal]
        return None if packed is None else zlib.decompress(packed)

    def _document(self, ordinal: int) -> Any:
        text = self._text(ordinal)
        return None if text is None else orjson.loads(text)

    # --- search -----------------------------------------------------------------------
    async def search(self, body: dict[str, Any]) -> SearchResult:
        """Validate ``body`` (400 if bad), catch up with the store, answer it."""
        request = parse_request(body)
        await self.refresh()
        return self.run(request)

    def run(self, request: SearchRequest) -> SearchResult:
        """Answer a parsed request from the index as it is (no sync)."""
        found = self._eval(request.query)
        end = request.start + request.size
        ordinals: list[int]
        if not request.sort:
            ordinals = _ordinals(found, end)[request.start:] if end else []
        elif len(request.sort) == 1 and request.sort[0].path != "_doc":
            ordinals = self._top(found, request.sort[0].path, request.sort[0].descending,
                                 end)[request.start:]
        else:
            columns = {(k.path, k.descending): self._column(k.path, k.descending)
                       for k in request.sort if k.path != "_doc"}

            def value(ordinal: int, path: str, descending: bool) -> Any:
                return columns[(path, descending)].get(ordinal)

            ordinals = order(_ordinals(found), request.sort, value)[request.start:end]
        hits: list[tuple[str, bytes]] = []
        for ordinal in ordinals:
            text = self._text(ordinal)
            if text is not None:
                hits.append((self._dids[ordinal], text))
        return SearchResult(found.bit_count(), hits)

    def _top(self, found: int, path: str, descending: bool, count: int) -> list[int]:
        """The first ``count`` of ``found`` sorted on one field (ties: index order),
        missing values last: a heap, not a full sort."""
        if not count:
            return []
        matched = found.bit_count()
        if matched * matched > count * max(len(self._dids), 1):
            # Many matches: walking the field's sorted values reaches ``count`` of them
            # after about count x documents / matches values, fewer than the matches.
            return self._walk_sorted(found, path, descending, count)
        column = self._column(path, descending)
        get = column.get
        everything = _ordinals(found)
        chosen: list[int]
        if descending:
            # value descending, ties by ordinal ascending
            high = heapq.nlargest(count, [(v, -o) for o in everything
                                          if (v := get(o)) is not None])
            chosen = [-o for _, o in high]
        else:
            low = heapq.nsmallest(count, [(v, o) for o in everything
                                          if (v := get(o)) is not None])
            chosen = [o for _, o in low]
        if len(chosen) < count:
            chosen.extend([o for o in everything if o not in column][:count - len(chosen)])
        return chosen

    def _walk_sorted(self, found: int, path: str, descending: bool, count: int) -> list[int]:
        """:meth:`_top` by walking the sorted values of ``path``: a document is taken at
        the first value of it met, which is its minimum ascending and its maximum
        descending (ES' sort value of a multi-valued field); ties in ordinal order."""
        numbers, strings = self._sorted(path)
        keys: Iterable[Key] = (itertools.chain(reversed(strings), reversed(numbers))
                               if descending else itertools.chain(numbers, strings))
        postings = self._values.get(path, {})
        data = found.to_bytes((found.bit_length() + 7) // 8, "little")
        size = len(data)
        seen: set[int] = set()
        chosen: list[int] = []
        for key in keys:
            posting = postings.get(key)
            members: Iterable[int]
            if posting is None:
                continue
            if isinstance(posting, int):
                members = (posting,)
            elif isinstance(posting, set):
                members = sorted(posting)
            else:
                members = _ordinals(int.from_bytes(posting, "little") & found)
            for ordinal in members:
                index = ordinal >> 3
                if index < size and data[index] >> (ordinal & 7) & 1 and ordinal not in seen:
                    seen.add(ordinal)
                    chosen.append(ordinal)
                    if len(chosen) == count:
                        return chosen
        # Every value walked: what is left of ``found`` lacks the field, and goes last.
        for ordinal in _ordinals(found):
            if ordinal not in seen:
                chosen.append(ordinal)
                if len(chosen) == count:
                    break
        return chosen

    def _column(self, path: str, descending: bool) -> dict[int, tuple[int, Key]]:
        column = self._columns.get((path, descending))
        if column is not None:
            return column
        column = {}
        for key, posting in self._values.get(path, {}).items():
            ranked: tuple[int, Key] = (0, key) if isinstance(key, float) else (1, key)
            for ordinal in _posting_ordinals(posting):
                current = column.get(ordinal)
                if current is None or (ranked > current if descending else ranked < current):
                    column[ordinal] = ranked
        self._columns[(path, descending)] = column
        return column

    def _all(self) -> int:
        return int.from_bytes(self._live, "little")

    def _eval(self, node: Node) -> int:
        """The documents matching ``node``, as an int bitmap."""
        if isinstance(node, MatchAll):
            return self._all()
        if isinstance(node, MatchNone):
            return 0
        if isinstance(node, Bool):
            return self._bool(node)
        if isinstance(node, Term):
            postings = self._values.get(node.path, {})
            return _union(postings.get(key) for key in node.keys)
        if isinstance(node, Text):
            return self._text_query(node)
        if isinstance(node, Pattern):
            return self._pattern(node)
        if isinstance(node, Range):
            return self._range(node)
        if isinstance(node, Exists):
            return _bits(self._exists.get(node.path))
        if isinstance(node, Nested):
            candidates = _bits(self._exists.get(node.path))
            if not has_negation(node.query):
                candidates &= self._eval(node.query)
            return self._verify(candidates, lambda document: matches(document, node))
        raise UnsupportedQueryError(f"Unsupported query clause: {type(node).__name__}.")

    def _bool(self, node: Bool) -> int:
        result: int | None = None
        for q in node.must:
            bits = self._eval(q)
            result = bits if result is None else result & bits
            if not result:
                return 0
        if node.minimum_should == 1:
            either = 0
            for q in node.should:
                either |= self._eval(q)
            result = either if result is None else result & either
        elif node.minimum_should > 1:
            counts: Counter[int] = Counter()
            for q in node.should:
                counts.update(_ordinals(self._eval(q)))
            enough = _from_ordinals([d for d, n in counts.items() if n >= node.minimum_should])
            result = enough if result is None else result & enough
        if result is None:
            result = self._all()
        for q in node.must_not:
            if not result:
                break
            result &= ~self._eval(q)
        return result

    def _verify(self, candidates: int, accept: Any) -> int:
        kept: list[int] = []
        for ordinal in _ordinals(candidates):
            document = self._document(ordinal)
            if document is not None and accept(document):
                kept.append(ordinal)
        return _from_ordinals(kept)

    def _token(self, path: str, token: str) -> int:
        """Documents with ``token`` at ``path``: in a text, or as a whole one-word value."""
        postings = self._tokens.get(path, {})
        values = self._values.get(path, {})
        found = [postings.get(token), values.get(token)]
        if token.isascii() and token.isdigit():  # float("²") raises
            found.append(values.get(float(token)))
        return _union(found)

    def _text_query(self, node: Text) -> int:
        paths = [node.path] if node.path is not None else sorted(
            set(self._tokens) | set(self._values))
        candidates = 0
        for path in paths:
            if node.mode == "any":
                for token in node.tokens:
                    candidates |= self._token(path, token)
                continue
            every = -1
            for token in node.tokens:
                every &= self._token(path, token)
                if not every:
                    break
            if every > 0:
                candidates |= every
        if node.mode != "phrase" or len(node.tokens) < 2:
            return candidates
        return self._verify(
            candidates, lambda document: phrase_matches(document, node.path, node.tokens))

    def _sorted(self, path: str) -> tuple[list[float], list[str]]:
        cached = self._sorted_values.get(path)
        if cached is None:
            keys = self._values.get(path, {})
            cached = (sorted(k for k in keys if isinstance(k, float)),
                      sorted(k for k in keys if isinstance(k, str)))
            self._sorted_values[path] = cached
        return cached

    def _sorted_token_keys(self, path: str) -> list[str]:
        cached = self._sorted_tokens.get(path)
        if cached is None:
            cached = sorted(self._tokens.get(path, {}))
            self._sorted_tokens[path] = cached
        return cached

    def _pattern(self, node: Pattern) -> int:
        paths = [node.path] if node.path is not None else sorted(
            set(self._values) | set(self._tokens))
        found: list[Posting | None] = []
        for path in paths:
            for keys, postings in ((self._sorted(path)[1], self._values.get(path)),
                                   (self._sorted_token_keys(path), self._tokens.get(path))):
                if not postings:
                    continue
                start = bisect.bisect_left(keys, node.prefix)
                for index in range(start, len(keys)):
                    key = keys[index]
                    if not key.startswith(node.prefix):
                        break
                    if pattern_accepts(node, key):
                        found.append(postings.get(key))
        return _union(found)

    def _range(self, node: Range) -> int:
        if node.low is None and node.high is None:
            return _bits(self._exists.get(node.path))
        bound = node.low if node.low is not None else node.high
        numbers, strings = self._sorted(node.path)
        keys: list[Any] = numbers if isinstance(bound, float) else strings
        start = 0 if node.low is None else (
            bisect.bisect_left(keys, node.low) if node.low_inclusive
            else bisect.bisect_right(keys, node.low))
        end = len(keys) if node.high is None else (
            bisect.bisect_right(keys, node.high) if node.high_inclusive
            else bisect.bisect_left(keys, node.high))
        postings = self._values.get(node.path, {})
        return _union(postings.get(keys[i]) for i in range(start, end))
