"""The query engine: one table of ES queries over a fixed corpus, answered three ways.

Each case lists the exact DIDs expected (in order when the case sorts). The same table
runs against the in-memory index (:class:`SearchIndex`), the reference scan
(:func:`query.search`) and, for a subset, POST /api/aquarius/assets/query over HTTP.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.server_helpers import serving
from tidegate.assets.query import InvalidQueryError, UnsupportedQueryError, search
from tidegate.assets.search_index import SearchIndex
from tidegate.settings import Settings
from tidegate.stores.sqlite import SqliteStore


def did(n: int) -> str:
    return "did:op:" + hashlib.sha256(str(n).encode()).hexdigest()


def ddo(n: int, chain: int, kind: str, name: str, tags: list[str], state: int,
        created: str, services: list[tuple[str, str]], orders: int | None,
        description: str = "") -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": ["https://w3id.org/did/v1"],
        "id": did(n),
        "version": "4.1.0",
        "chainId": chain,
        "nftAddress": f"0x{n:040x}",
        "metadata": {"created": created, "updated": created, "type": kind, "name": name,
                     "description": description or f"Asset number {n}", "tags": tags,
                     "author": "Tidegate", "license": "MIT"},
        "services": [{"id": f"s{i}", "type": t, "datatokenAddress": dt, "timeout": 0,
                      "files": "0x1234", "serviceEndpoint": "https://provider.example"}
                     for i, (t, dt) in enumerate(services)],
        "nft": {"address": f"0x{n:040x}", "name": "Data NFT", "symbol": "DN", "state": state,
                "owner": "0x" + "ab" * 20, "created": created},
        "datatokens": [{"address": dt, "name": f"DT {n}", "symbol": "DT", "serviceId": f"s{i}"}
                       for i, (_, dt) in enumerate(services)],
        "purgatory": {"state": False},
    }
    if orders is not None:
        document["stats"] = {"orders": orders, "price": {"value": 1.5}}
    return document


CORPUS = [
    ddo(1, 1, "dataset", "Weather data Berlin", ["weather", "climate"], 0,
        "2023-01-15T10:00:00Z", [("access", "0xAAA1")], 5),
    ddo(2, 1, "algorithm", "Weather forecast model", ["weather", "ml"], 0,
        "2023-03-01T00:00:00Z", [("compute", "0xBBB2")], 10),
    ddo(3, 2, "algorithm", "Image classifier", ["vision", "ml"], 0,
        "2023-06-10T08:30:00Z", [("access", "0xCCC3"), ("compute", "0xCCC4")], 0),
    ddo(4, 2, "dataset", "Traffic counts Paris", ["traffic"], 5,
        "2022-12-31T23:59:59Z", [("access", "0xEEE4")], 3),
    ddo(5, 137, "algorithm", "Price predictor", ["finance", "ml"], 0,
        "2024-01-01T00:00:00Z", [("compute", "0xFFF5")], 7),
    ddo(6, 137, "dataset", "Stock prices 2023", ["finance"], 2,
        "2023-09-09T09:09:09Z", [("access", "0x0006")], None),
    ddo(7, 1, "dataset", "Berlin bike rides", ["mobility", "berlin"], 0,
        "2023-02-02T02:02:02Z", [("compute", "0xDDD7"), ("access", "0xDDD8")], 2),
    ddo(8, 8996, "dataset", "tidegate-e2e-plain-123", [], 0, "2023-05-05T05:05:05Z",
        [("access", "0x0008")], 4, "A description with the quick brown fox"),
    ddo(9, 2, "algorithm", "Data cleaner", [], 0, "2021-07-07T07:07:07Z",
        [("compute", "0x0009")], 9),
    ddo(10, 1, "dataset", "Air quality", ["climate", "air"], 0, "2024-02-02T00:00:00Z",
        [], 6),
]


def qs(text: str, **options: Any) -> dict[str, Any]:
    return {"query": {"query_string": {"query": text, **options}}}


def q(clause: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"query": clause, **extra}


def escaped(value: str) -> str:
    # what ocean.py's ocean.assets.search(text) sends
    return value.replace(":", "\\:")


ALL = list(range(1, 11))
NESTED_SAME_ELEMENT = {"nested": {"path": "services", "query": {"bool": {"must": [
    {"term": {"services.type": "compute"}},
    {"term": {"services.datatokenAddress": "0xCCC3"}}]}}}}

# (id, body, expected DIDs as corpus numbers, ordered?)
CASES: list[tuple[str, dict[str, Any], list[int], bool]] = [
    # the two bugs of the old evaluator
    ("or-group-and", qs("(chainId:1 OR chainId:2) AND metadata.type:algorithm"),
     [2, 3, 9], False),
    ("and-not", qs("metadata.type:algorithm AND NOT chainId:2"), [2, 5], False),
    ("field-number", qs("chainId:137"), [5, 6], False),
    ("default-or", qs("chainId:1 metadata.type:algorithm"), [1, 2, 3, 5, 7, 9, 10], False),
    ("default-and", qs("chainId:1 metadata.type:algorithm", default_operator="AND"), [2],
     False),
    ("plus-minus", qs("+metadata.type:dataset -chainId:1"), [4, 6, 8], False),
    ("plus-optional-should", qs("+metadata.type:algorithm chainId:1"), [2, 3, 5, 9], False),
    ("pure-not", qs("NOT metadata.type:dataset"), [2, 3, 5, 9], False),
    ("and-binds-tighter", qs("chainId:137 OR chainId:2 AND metadata.type:dataset"),
     [4, 5, 6], False),
    ("free-text", qs("weather"), [1, 2], False),
    ("free-text-case-or", qs("WEATHER berlin"), [1, 2, 7], False),
    ("phrase", qs('"weather data"'), [1], False),
    ("phrase-order", qs('"data weather"'), [], False),
    ("field-phrase", qs('metadata.name:"weather data"'), [1], False),
    ("wildcard-star", qs("metadata.name:weath*"), [1, 2], False),
    ("wildcard-question", qs("metadata.name:Im?ge*"), [3], False),
    ("free-wildcard", qs("classif*"), [3], False),
    ("field-group", qs("metadata.tags:(ml OR vision)"), [2, 3, 5], False),
    ("field-group-and", qs("metadata.tags:(ml AND vision)"), [3], False),
    ("range-dates", qs("nft.created:[2023-01-01 TO 2023-06-01]"), [1, 2, 7, 8], False),
    ("range-dates-wide", qs("nft.created:[2023-01-01 TO 2023-06-10T08:30:00Z]"),
     [1, 2, 3, 7, 8], False),
    ("range-dates-exclusive", qs("nft.created:{2023-01-15T10:00:00Z TO 2023-06-10T08:30:00Z}"),
     [2, 7, 8], False),
    ("range-gte", qs("stats.orders:>=7"), [2, 5, 9], False),
    ("range-exclusive", qs("stats.orders:{3 TO 7}"), [1, 8, 10], False),
    ("range-open", qs("chainId:[1 TO 2]"), [1, 2, 3, 4, 7, 9, 10], False),
    ("range-star", qs("stats.orders:[9 TO *]"), [2, 9], False),
    ("exists", qs("_exists_:stats"), [1, 2, 3, 4, 5, 7, 8, 9, 10], False),
    ("not-exists", qs("NOT _exists_:stats"), [6], False),
    ("field-star-exists", qs("stats.orders:*"), [1, 2, 3, 4, 5, 7, 8, 9, 10], False),
    ("escaped-did", qs(escaped(did(5))), [5], False),
    ("escaped-did-field", qs("id:" + escaped(did(3))), [3], False),
    ("hyphenated-name", qs("tidegate-e2e-plain-123"), [8], False),
    ("case-insensitive-value", qs("services.datatokenAddress:0xccc3"), [3], False),
    ("default-field", qs("berlin", default_field="metadata.tags"), [7], False),
    ("fields", qs("weather OR paris", fields=["metadata.name", "metadata.tags"]),
     [1, 2, 4], False),
    ("keyword-suffix", qs("metadata.type.keyword:algorithm AND chainId:137"), [5], False),
    ("bool-state", qs("nft.state:0 AND metadata.type:dataset"), [1, 7, 8, 10], False),
    ("match-all-qs", qs("*"), ALL, False),
    ("star-star", qs("*:*"), ALL, False),
    # JSON DSL
    ("match-all", q({"match_all": {}}, size=20), ALL, False),
    ("term", q({"term": {"chainId": 2}}), [3, 4, 9], False),
    ("term-string-number", q({"term": {"chainId": "2"}}), [3, 4, 9], False),
    ("term-value-object", q({"term": {"metadata.type.keyword": {"value": "Algorithm"}}}),
     [2, 3, 5, 9], False),
    ("term-bool", q({"term": {"purgatory.state": False}}, size=20), ALL, False),
    ("term-list-field", q({"term": {"metadata.tags": "ML"}}), [2, 3, 5], False),
    ("terms", q({"terms": {"chainId": [1, 137]}}), [1, 2, 5, 6, 7, 10], False),
    ("terms-id", q({"terms": {"_id": [did(1), did(3)]}}), [1, 3], False),
    ("ids", q({"ids": {"values": [did(4), did(9), "did:op:nothing"]}}), [4, 9], False),
    ("match-any", q({"match": {"metadata.name": "weather berlin"}}), [1, 2, 7], False),
    ("match-and", q({"match": {"metadata.name": {"query": "weather berlin",
                                                  "operator": "and"}}}), [1], False),
    ("match-phrase", q({"match_phrase": {"metadata.description": "quick brown fox"}}),
     [8], False),
    ("match-phrase-miss", q({"match_phrase": {"metadata.description": "brown quick"}}),
     [], False),
    ("multi-match", q({"multi_match": {"query": "paris", "fields": ["metadata.name",
                                                                     "metadata.tags"]}}),
     [4], False),
    ("prefix", q({"prefix": {"metadata.name": "trAff"}}), [4], False),
    ("prefix-value", q({"prefix": {"nftAddress": {"value": "0x" + "0" * 39 + "A"}}}),
     [10], False),
    ("wildcard", q({"wildcard": {"metadata.tags": "cl*ate"}}), [1, 10], False),
    ("wildcard-value", q({"wildcard": {"services.type": {"value": "comp?te"}}}),
     [2, 3, 5, 7, 9], False),
    ("range-date", q({"range": {"nft.created": {"gte": "2024-01-01"}}}), [5, 10], False),
    ("range-numbers", q({"range": {"stats.orders": {"gt": 5, "lte": 9}}}), [5, 9, 10],
     False),
    ("range-lt-date", q({"range": {"metadata.created": {"lt": "2023-01-01T00:00:00Z"}}}),
     [4, 9], False),
    ("exists-dsl", q({"exists": {"field": "services.datatokenAddress"}}),
     [1, 2, 3, 4, 5, 6, 7, 8, 9], False),
    ("exists-object", q({"exists": {"field": "stats"}}), [1, 2, 3, 4, 5, 7, 8, 9, 10], False),
    ("bool-must-not-should", q({"bool": {
        "must": [{"term": {"metadata.type": "dataset"}}],
        "must_not": [{"term": {"nft.state": 5}}],
        "should": [{"term": {"metadata.tags": "climate"}}]}}), [1, 6, 7, 8, 10], False),
    ("bool-should-msm", q({"bool": {
        "must": [{"term": {"metadata.type": "dataset"}}],
        "must_not": [{"term": {"nft.state": 5}}],
        "should": [{"term": {"metadata.tags": "climate"}}],
        "minimum_should_match": 1}}), [1, 10], False),
    ("bool-should-only", q({"bool": {"should": [{"term": {"chainId": 137}},
                                                 {"term": {"metadata.tags": "traffic"}}]}}),
     [4, 5, 6], False),
    ("bool-msm-2", q({"bool": {"should": [{"term": {"metadata.tags": "ml"}},
                                           {"term": {"chainId": 2}},
                                           {"term": {"metadata.type": "algorithm"}}],
                               "minimum_should_match": 2}}), [2, 3, 5, 9], False),
    ("bool-filter", q({"bool": {"filter": {"term": {"chainId": 1}},
                                "must_not": {"exists": {"field": "metadata.tags"}}}}),
     [], False),
    ("bool-filter-2", q({"bool": {"filter": [{"term": {"chainId": 2}},
                                             {"range": {"stats.orders": {"gte": 3}}}]}}),
     [4, 9], False),
    ("bool-with-qs", q({"bool": {"must": [qs("weather OR bike")["query"]],
                                 "must_not": [{"term": {"metadata.type": "algorithm"}}]}}),
     [1, 7], False),
    ("flattened-not-nested", q({"bool": {"must": [
        {"term": {"services.type": "compute"}},
        {"term": {"services.datatokenAddress": "0xCCC3"}}]}}), [3], False),
    ("nested-same-element", q(NESTED_SAME_ELEMENT), [], False),
    ("nested-hit", q({"nested": {"path": "services", "query": {"bool": {"must": [
        {"term": {"services.type": "compute"}},
        {"term": {"services.datatokenAddress": "0xccc4"}}]}}}}), [3], False),
    ("nested-negation", q({"nested": {"path": "services", "query": {"bool": {
        "must_not": [{"term": {"services.type": "access"}}]}}}}), [2, 3, 5, 7, 9], False),
    # sort and paging
    ("sort-desc", q({"match_all": {}}, sort=[{"stats.orders": {"order": "desc"}}], size=3),
     [2, 9, 5], True),
    ("sort-paging", q({"match_all": {}}, sort=[{"nft.created": "asc"}], size=3,
                      **{"from": 2}), [1, 7, 2], True),
    ("sort-missing-last-asc", q({"term": {"chainId": 137}}, sort={"stats.orders": "asc"}),
     [5, 6], True),
    ("sort-missing-last-desc", q({"term": {"chainId": 137}}, sort={"stats.orders": "desc"}),
     [5, 6], True),
    ("sort-two-keys", q({"match_all": {}}, sort=[{"chainId": "asc"},
                                                 {"stats.orders": {"order": "desc"}}]),
     [2, 10, 1, 7, 9, 4, 3, 5, 6, 8], True),
    ("sort-qs-page", qs("metadata.type:dataset", sort=None) | {
        "sort": [{"metadata.created": "desc"}], "size": 2, "from": 1}, [6, 8], True),
    ("default-order-page", q({"match_all": {}}, size=4, **{"from": 3}), [4, 5, 6, 7], True),
    ("size-zero", q({"match_all": {}}, size=0), [], True),
]

TOTALS = {"size-zero": 10, "sort-paging": 10, "sort-desc": 10, "default-order-page": 10,
          "sort-qs-page": 6}

HTTP_CASES = {"or-group-and", "and-not", "escaped-did", "bool-must-not-should", "nested-hit",
              "sort-paging", "range-dates-wide", "terms-id"}


class ListStore:
    """Just the change feed of a Store, over a list."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.rows = [(i + 1, d["id"], orjson.dumps(d).decode()) for i, d in enumerate(documents)]
        self.last = len(self.rows)

    async def ddo_changes_since(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        return [row for row in self.rows if row[0] > seq][:limit]

    def put(self, document: dict[str, Any]) -> None:
        self.rows = [r for r in self.rows if r[1] != document["id"]]
        self.last += 1
        self.rows.append((self.last, document["id"], orjson.dumps(document).decode()))


def expected(numbers: list[int]) -> list[str]:
    return [did(n) for n in numbers]


def check(name: str, dids: list[str], total: int, numbers: list[int], ordered: bool) -> None:
    if ordered:
        assert dids == expected(numbers), name
    else:
        assert sorted(dids) == sorted(expected(numbers)), name
        assert total == len(numbers), name
    if name in TOTALS:
        assert total == TOTALS[name], name


@pytest.fixture(scope="module")
def index_store() -> ListStore:
    return ListStore(CORPUS)


@pytest.mark.parametrize(("name", "body", "numbers", "ordered"), CASES,
                         ids=[c[0] for c in CASES])
async def test_index(index_store: ListStore, name: str, body: dict[str, Any],
                     numbers: list[int], ordered: bool) -> None:
    index = SearchIndex(index_store)  # type: ignore[arg-type]
    result = await index.search(body)
    check(name, result.dids, result.total, numbers, ordered)
    rendered = result.render()
    decoded = orjson.loads(orjson.dumps(rendered))
    assert [h["_source"]["id"] for h in decoded["hits"]["hits"]] == result.dids
    assert decoded["hits"]["total"] == {"value": result.total, "relation": "eq"}


@pytest.mark.parametrize(("name", "body", "numbers", "ordered"), CASES,
                         ids=[c[0] for c in CASES])
def test_reference_scan(name: str, body: dict[str, Any], numbers: list[int],
                        ordered: bool) -> None:
    answer = search(CORPUS, body)
    dids = [h["_id"] for h in answer["hits"]["hits"]]
    check(name, dids, answer["hits"]["total"]["value"], numbers, ordered)


@pytest.mark.parametrize("body", [
    {"query": {"geo_shape": {"location": {}}}},
    {"query": {"bool": {"must": [{"script": {"source": "x"}}]}}},
    {"query": {"bool": {"musts": []}}},
    qs("metadata.name:weathr~2"),
    qs("metadata.name:/wea.*/"),
])
async def test_unsupported_is_a_400(index_store: ListStore, body: dict[str, Any]) -> None:
    index = SearchIndex(index_store)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedQueryError) as raised:
        await index.search(body)
    assert raised.value.status == 400 and raised.value.code == "unsupported_query"


@pytest.mark.parametrize("body", [
    qs("(chainId:1 OR"),
    qs("AND"),
    {"query": {"term": {"a": 1, "b": 2}}},
    {"query": {"terms": {"chainId": 1}}},
    {"query": {"range": {"x": 5}}},
    {"query": {}},
    {"query": {"match_all": {}}, "size": -1},
    {"query": {"match_all": {}}, "size": "ten"},
    {"query": {"match_all": {}}, "from": 9_995, "size": 10},
    {"query": {"match_all": {}}, "sort": [{"x": "sideways"}]},
    {"query": {"query_string": {"query": "x", "default_operator": "XOR"}}},
])
async def test_invalid_is_a_400(index_store: ListStore, body: dict[str, Any]) -> None:
    index = SearchIndex(index_store)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError) as raised:
        await index.search(body)
    assert raised.value.status == 400


async def test_size_is_capped_and_deep_queries_refused(index_store: ListStore) -> None:
    index = SearchIndex(index_store)  # type: ignore[arg-type]
    result = await index.search({"query": {"match_all": {}}, "size": 1_000_000})
    assert result.total == 10 and len(result.dids) == 10
    deep: dict[str, Any] = {"match_all": {}}
    for _ in range(200):
        deep = {"bool": {"must": [deep]}}
    with pytest.raises(InvalidQueryError):
        await index.search({"query": deep})
    with pytest.raises(InvalidQueryError):
        await index.search(qs("(" * 500 + "a" + ")" * 500))


async def test_changes_are_applied_before_the_next_answer() -> None:
    store = ListStore(CORPUS[:3])
    index = SearchIndex(store)  # type: ignore[arg-type]
    assert (await index.search(qs("chainId:2"))).dids == [did(3)]
    store.put(CORPUS[3])  # a new DDO
    changed = dict(CORPUS[0], chainId=2)  # and an update that moves d1 to chain 2
    store.put(changed)
    result = await index.search(qs("chainId:2"))
    assert sorted(result.dids) == sorted([did(1), did(3), did(4)])
    assert (await index.search(qs("chainId:1"))).dids == [did(2)]
    assert (await index.search(qs("weather"))).total == 2
    assert (await index.search({"query": {"match_all": {}},
                                "sort": [{"chainId": "desc"}]})).dids[-1] == did(2)
    store.put(dict(CORPUS[1], metadata={"name": "renamed"}))
    assert (await index.search(qs("weather"))).dids == [did(1)]
    assert (await index.search(qs("metadata.name:renamed"))).dids == [did(2)]
    assert (await index.search({"query": {"match_all": {}},
                                "sort": [{"chainId": "desc"}]})).dids[-1] == did(2)


# --- over HTTP ---------------------------------------------------------------------------

@pytest.fixture
async def served(make_settings: Callable[..., Settings],
                 tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SqliteStore]]:
    settings = make_settings()
    async with serving(settings) as url:
        writer = SqliteStore(settings.sqlite_path)
        await writer.open()
        try:
            for n, document in enumerate(CORPUS):
                await writer.put_ddo(document["id"], document["chainId"],
                                     document["nftAddress"], orjson.dumps(document).decode(),
                                     n + 1, 0)
            async with httpx.AsyncClient(base_url=url) as client:
                yield client, writer
        finally:
            await writer.close()


QUERY = "/api/aquarius/assets/query"


async def test_http_table_and_a_later_put(
        served: tuple[httpx.AsyncClient, SqliteStore]) -> None:
    client, writer = served
    for name, body, numbers, ordered in CASES:
        if name not in HTTP_CASES:
            continue
        response = await client.post(QUERY, json=body)
        assert response.status_code == 200, (name, response.text)
        hits = response.json()["hits"]
        dids = [h["_id"] for h in hits["hits"]]
        assert [h["_source"]["id"] for h in hits["hits"]] == dids
        check(name, dids, hits["total"]["value"], numbers, ordered)
    # A DDO written after the index was built is in the very next answer.
    late = ddo(11, 2, "algorithm", "Late arrival", [], 0, "2025-01-01T00:00:00Z", [], 1)
    await writer.put_ddo(late["id"], 2, late["nftAddress"], orjson.dumps(late).decode(), 99, 0)
    body = qs("(chainId:1 OR chainId:2) AND metadata.type:algorithm")
    hits = (await client.post(QUERY, json=body)).json()["hits"]
    assert sorted(h["_id"] for h in hits["hits"]) == sorted(expected([2, 3, 9, 11]))
    # GET ddo/<did> is a store lookup
    got = await client.get(f"/api/aquarius/assets/ddo/{did(11)}")
    assert got.status_code == 200 and got.json()["metadata"]["name"] == "Late arrival"


async def test_http_errors(served: tuple[httpx.AsyncClient, SqliteStore]) -> None:
    client, _ = served
    response = await client.post(QUERY, json={"query": {"geo_shape": {"x" * 5000: {}}}})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unsupported_query" and len(body["error"]) < 200
    response = await client.post(QUERY, json=qs("(" + "x" * 5000))
    assert response.status_code == 400 and response.json()["code"] == "invalid_query"
    assert len(response.text) < 300
    response = await client.post(QUERY, content=b"{nope")
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"
    response = await client.post(QUERY, json={"query": {"match_all": {}}, "size": -5})
    assert response.status_code == 400


# --- many documents: dense postings (bitmaps), updates, index == reference scan ---------

def synthetic(n: int, rng: random.Random) -> dict[str, Any]:
    words = ["weather", "ocean", "traffic", "energy", "model", "city", "bike", "price"]
    return ddo(n, rng.choice([1, 2, 137]), rng.choice(["dataset", "algorithm"]),
               " ".join(rng.choice(words) for _ in range(3)), rng.sample(words, 2),
               rng.choice([0, 0, 0, 5]),
               f"202{rng.randint(1, 4)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T00:00:00Z",
               [(rng.choice(["access", "compute"]), f"0x{rng.randint(0, 40):04x}")
                for _ in range(rng.randint(0, 2))],
               rng.choice([None, rng.randint(0, 20)]))


DIFFERENTIAL = [
    qs("(chainId:1 OR chainId:2) AND metadata.type:algorithm"),
    qs("weather -ocean"),
    qs('"weather ocean"'),
    qs("metadata.tags:(bike AND NOT city) OR nft.state:5"),
    qs("metadata.name:en*gy AND stats.orders:[5 TO 10}"),
    qs("NOT _exists_:stats"),
    q({"bool": {"must": [{"term": {"metadata.type": "dataset"}}],
                "must_not": [{"term": {"nft.state": 5}}],
                "should": [{"match": {"metadata.name": "city bike"}},
                           {"range": {"nft.created": {"gte": "2023-01-01"}}},
                           {"prefix": {"services.datatokenAddress": "0x001"}}],
                "minimum_should_match": 2}}, size=50),
    q({"nested": {"path": "services", "query": {"bool": {"must": [
        {"term": {"services.type": "compute"}},
        {"wildcard": {"services.datatokenAddress": "0x00?5"}}]}}}}, size=50),
    q({"match_all": {}}, sort=[{"stats.orders": "desc"}, {"nft.created": "asc"}], size=40,
      **{"from": 30}),
    q({"terms": {"chainId": [2, 137]}}, sort={"metadata.name": "asc"}, size=25),
    # one-key sorts over most documents (the sorted-values walk), multi-valued fields
    # (min ascending, max descending), documents lacking the field last
    q({"match_all": {}}, sort={"services.datatokenAddress": "desc"}, size=80,
      **{"from": 600}),
    q({"term": {"metadata.type": "dataset"}}, sort={"services.datatokenAddress": "asc"},
      size=50, **{"from": 50}),
    q({"match_all": {}}, sort=[{"stats.orders": "asc"}], size=100, **{"from": 560}),
    q({"match_all": {}}, sort=[{"nft.created": {"order": "desc"}}], size=30),
    q({"term": {"chainId": 137}}, sort={"metadata.tags": "asc"}, size=5),
]


async def test_many_documents_and_updates_agree_with_the_scan() -> None:
    rng = random.Random(11)
    documents = {n: synthetic(n, rng) for n in range(1, 701)}
    store = ListStore(list(documents.values()))
    index = SearchIndex(store, batch=128)  # type: ignore[arg-type]

    async def compare() -> None:
        for body in DIFFERENTIAL:
            mine = await index.search(body)
            reference = search(list(documents.values()), body)["hits"]
            assert mine.total == reference["total"]["value"], body
            assert mine.dids == [h["_id"] for h in reference["hits"]], body

    await compare()
    for n in rng.sample(sorted(documents), 400):  # updates thin out the dense postings
        documents[n] = synthetic(n, rng) | {"id": did(n)}
        store.put(documents[n])
    for n in range(701, 761):
        documents[n] = synthetic(n, rng)
        store.put(documents[n])
    await compare()
    assert len(index) == 760
