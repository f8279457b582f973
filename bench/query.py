"""``python -m bench.query``: POST /api/aquarius/assets/query at 1k, 10k and 100k DDOs.

For each store (SQLite, PostgreSQL) and size it fills a fresh database with synthetic
but realistic DDOs (bulk: one executemany / COPY, with the change feed's seq set),
starts ``tidegate serve`` (1 worker) on loopback, times the first query (the search
index is built from the store's change feed then) and the RSS it added, and measures
p50/p99 of sequential requests over one keep-alive connection for each query below
and for GET ddo/<did>. The old approach (load and parse every DDO, then check each:
:func:`tidegate.assets.query.search`) is timed in process at 1k and 10k as a baseline.

Prints a table, with p99(100k)/p99(1k) per query; ``--markdown`` also writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.procs import Proc, free_port, rss_mib, wait_http
from tidegate.assets.query import search
from tidegate.stores.postgres import PostgresStore
from tidegate.stores.sqlite import SqliteStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SIZES = (1_000, 10_000, 100_000)
KEY = "0x" + "5a" * 32
TARGET_P99_MS = 50.0
TARGET_RATIO = 5.0

_VOCABULARY = ("weather climate ocean traffic energy health finance stock crypto image vision "
               "audio speech text language model forecast sensor city mobility bike air "
               "quality satellite soil crop water price market census retail social graph "
               "genome protein medical survey election sport music video map road rail "
               "flight port ship")
WORDS = _VOCABULARY.split()
TAGS = WORDS[:30]
CHAINS = (1, 1, 1, 2, 2, 137, 137, 56, 10, 8996)
STATES = (0,) * 16 + (1, 2, 3, 4)

QUERIES: dict[str, dict[str, Any]] = {
    "term": {"query": {"bool": {"filter": [{"term": {"chainId": 137}}]}}, "size": 10},
    "terms": {"query": {"terms": {"chainId": [1, 137]}}, "size": 10},
    "bool": {"query": {"bool": {
        "must": [{"term": {"metadata.type": "dataset"}}],
        "must_not": [{"terms": {"nft.state": [1, 2, 3, 4, 5]}}],
        "should": [{"term": {"metadata.tags": "climate"}}],
        "minimum_should_match": 1}}, "size": 20},
    "query_string": {"query": {"query_string": {
        "query": "(chainId:1 OR chainId:2) AND metadata.type:algorithm"}}, "size": 10},
    "sort+paging": {"query": {"term": {"metadata.type": "dataset"}},
                    "sort": [{"nft.created": {"order": "desc"}}], "size": 100, "from": 200},
}
TARGETED = ("term", "terms", "bool")


def did_of(n: int) -> str:
    return "did:op:" + secrets.token_hex(32) if n < 0 else f"did:op:{n:064x}"


def make_ddo(n: int, rng: random.Random) -> dict[str, Any]:
    chain = rng.choice(CHAINS)
    kind = "algorithm" if rng.random() < 0.3 else "dataset"
    name = " ".join(rng.choice(WORDS).capitalize() if i == 0 else rng.choice(WORDS)
                    for i in range(rng.randint(2, 5))) + f" {n}"
    created = (f"{rng.randint(2021, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
               f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z")
    nft = f"0x{rng.getrandbits(160):040x}"
    services = []
    datatokens = []
    for i in range(rng.choice((1, 1, 1, 2))):
        token = f"0x{rng.getrandbits(160):040x}"
        service_type = "compute" if (kind == "algorithm" or i == 1) else "access"
        services.append({
            "id": f"{rng.getrandbits(64):016x}", "type": service_type,
            "files": "0x" + secrets.token_hex(rng.randint(150, 300)),
            "datatokenAddress": token, "serviceEndpoint": "https://provider.example.com",
            "timeout": rng.choice((0, 3600, 86400)),
            **({"compute": {"allowRawAlgorithm": False, "allowNetworkAccess": True,
                            "publisherTrustedAlgorithms": [],
                            "publisherTrustedAlgorithmPublishers": []}}
               if service_type == "compute" else {}),
        })
        datatokens.append({"address": token, "name": f"Datatoken {n}-{i}", "symbol": "DT",
                           "serviceId": services[-1]["id"]})
    metadata: dict[str, Any] = {
        "created": created, "updated": created, "type": kind, "name": name,
        "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))),
        "tags": rng.sample(TAGS, rng.randint(0, 4)), "author": f"Publisher {n % 500}",
        "license": rng.choice(("MIT", "CC-BY-4.0", "Apache-2.0")),
        "additionalInformation": {"termsAndConditions": True},
    }
    if kind == "algorithm":
        metadata["algorithm"] = {"language": "python", "version": "0.1", "container": {
            "entrypoint": "python $ALGO", "image": "oceanprotocol/algo_dockers",
            "tag": "python-branin", "checksum": "sha256:" + secrets.token_hex(32)}}
    return {
        "@context": ["https://w3id.org/did/v1"], "id": did_of(n), "version": "4.1.0",
        "chainId": chain, "nftAddress": nft, "metadata": metadata, "services": services,
        "nft": {"address": nft, "name": "Ocean Data NFT", "symbol": "OCEAN-NFT",
                "state": rng.choice(STATES), "owner": f"0x{rng.getrandbits(160):040x}",
                "tokenURI": "data:application/json;base64,e30=", "created": created},
        "datatokens": datatokens,
        "event": {"tx": "0x" + secrets.token_hex(32), "block": n, "from": "0x" + "ab" * 20,
                  "contract": nft, "datetime": created},
        "stats": {"orders": rng.randint(0, 50), "price": {"value": rng.choice((0, 1, 3.5))}},
        "purgatory": {"state": False},
    }


def make_corpus(count: int) -> list[tuple[str, int, str, str]]:
    rng = random.Random(7)
    rows = []
    for n in range(count):
        ddo = make_ddo(n, rng)
        rows.append((ddo["id"], ddo["chainId"], ddo["nftAddress"], orjson.dumps(ddo).decode()))
    return rows


# --- stores --------------------------------------------------------------------------

def fill_sqlite(path: Path, rows: list[tuple[str, int, str, str]]) -> None:
    async def migrate() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO ddos (did, chain_id, nft_address, document, block, log_index, seq) "
            "VALUES (?, ?, ?, ?, ?, 0, ?)",
            ((did, chain, nft, doc, i, i + 1) for i, (did, chain, nft, doc) in enumerate(rows)))
    db.close()


def fill_postgres(url: str, rows: list[tuple[str, int, str, str]]) -> None:
    async def fill() -> None:
        store = PostgresStore(url)
        await store.open()
        await store.close()
        conn = await asyncpg.connect(url)
        try:
            await conn.copy_records_to_table(
                "ddos", columns=["did", "chain_id", "nft_address", "document", "block",
                                 "log_index", "seq"],
                records=[(did, chain, nft, doc, i, 0, i + 1)
                         for i, (did, chain, nft, doc) in enumerate(rows)])
            await conn.execute("UPDATE ddo_seq SET value = $1 WHERE id = 1", len(rows))
            await conn.execute("ANALYZE ddos")
        finally:
            await conn.close()

    asyncio.run(fill())


async def _schema(action: str, name: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(f"{action} SCHEMA {name}" + (" CASCADE" if action == "DROP" else ""))
    finally:
        await conn.close()


# --- measuring ---------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Callable[[], Any], count: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50": statistics.median(samples), "p99": percentile(samples, 0.99),
            "n": float(count)}


def serve(workdir: Path, database_url: str | None) -> tuple[Proc, str]:
    port = free_port()
    # No chain is needed; serve's start-up checks want the chain in an address file.
    address_file = workdir / "address.json"
    address_file.write_text(json.dumps({"development": {
        "chainId": 8996, "startBlock": 0, "Ocean": "0x" + "01" * 20}}))
    env = {
        "ADDRESS_FILE": str(address_file),
        "PATH": "/usr/bin:/bin", "HOME": str(workdir),
        "PROVIDER_PRIVATE_KEY": json.dumps({"8996": KEY}),
        "NETWORK_URL": json.dumps({"8996": "http://127.0.0.1:9"}),
        "TIDEGATE_DATA_DIR": str(workdir), "TIDEGATE_INDEXER": "false",
        "TIDEGATE_ACCESS_LOG": "false", "LOG_LEVEL": "WARNING",
        "IPFS_GATEWAY": "", "ARWEAVE_GATEWAY": "",
    }
    if database_url:
        env["TIDEGATE_DATABASE_URL"] = database_url
    proc = Proc("tidegate", [sys.executable, "-m", "tidegate", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/", proc, timeout=60)
    return proc, base


def idle_rss(workdir: Path, url: str | None) -> float:
    """RSS of a server whose store holds no DDO (after one query)."""
    proc, base = serve(workdir, url)
    try:
        httpx.post(base + "/api/aquarius/assets/query", json={}, timeout=60).raise_for_status()
        return rss_mib([proc.pid])[0]
    finally:
        proc.stop()


def measure_server(base: str, proc: Proc, dids: list[str], count: int,
                   empty_rss: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=600) as client:
        # The app builds the index in the background from start-up; the first query
        # waits for it: this is the build time, less the ~0.1 s before the server is up.
        start = time.perf_counter()
        first = client.post("/api/aquarius/assets/query", json={"query": {"match_all": {}}})
        out["build_s"] = time.perf_counter() - start
        first.raise_for_status()
        out["total"] = first.json()["hits"]["total"]["value"]
        out["rss_mib"] = rss_mib([proc.pid])[0]
        out["rss_delta_mib"] = out["rss_mib"] - empty_rss
        for name, body in QUERIES.items():
            def post(body: dict[str, Any] = body) -> None:
                response = client.post("/api/aquarius/assets/query", json=body)
                response.raise_for_status()
            response = client.post("/api/aquarius/assets/query", json=body).json()
            out[name] = timed(post, count)
            out[name]["hits"] = float(response["hits"]["total"]["value"])
        rng = random.Random(3)

        def get() -> None:
            response = client.get(f"/api/aquarius/assets/ddo/{rng.choice(dids)}")
            response.raise_for_status()
        out["GET ddo"] = timed(get, count)
    return out


def measure_parse_all(path: Path, reps: int) -> dict[str, dict[str, float]]:
    """The old query path, in process: every DDO from the store, parsed, each checked."""
    async def load() -> list[str]:
        store = SqliteStore(path)
        await store.open()
        try:
            return await store.list_ddos()
        finally:
            await store.close()

    out = {}
    for name, body in QUERIES.items():
        def run(body: dict[str, Any] = body) -> None:
            texts = asyncio.run(load())
            search([orjson.loads(t) for t in texts], body)
        out[name] = timed(run, reps, warmup=1)
    return out


def run(sizes: tuple[int, ...], backends: tuple[str, ...], requests: int) -> dict[str, Any]:
    started = time.perf_counter()
    corpus = make_corpus(max(sizes))
    results: dict[str, Any] = {"corpus_s": time.perf_counter() - started,
                               "doc_bytes": statistics.mean(len(r[3]) for r in corpus[:1000]),
                               "requests": requests}
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="tg-bench-query-") as tmp:
            empty_url: str | None = None
            schema = ""
            if backend == "sqlite":
                fill_sqlite(Path(tmp) / "tidegate.db", [])
                empty_url = f"sqlite://{Path(tmp) / 'tidegate.db'}"
            else:
                schema = "tg_bench_" + secrets.token_hex(4)
                asyncio.run(_schema("CREATE", schema))
                empty_url = f"{PG_URL}?search_path={schema}"
            try:
                empty_rss = idle_rss(Path(tmp), empty_url)
            finally:
                if schema:
                    asyncio.run(_schema("DROP", schema))
        results[f"{backend}/idle_rss"] = empty_rss
        for size in sizes:
            rows = corpus[:size]
            dids = [r[0] for r in rows]
            with tempfile.TemporaryDirectory(prefix="tg-bench-query-") as tmp:
                workdir = Path(tmp)
                schema = ""
                fill_start = time.perf_counter()
                if backend == "sqlite":
                    fill_sqlite(workdir / "tidegate.db", rows)
                    url: str | None = f"sqlite://{workdir / 'tidegate.db'}"
                else:
                    schema = "tg_bench_" + secrets.token_hex(4)
                    asyncio.run(_schema("CREATE", schema))
                    url = f"{PG_URL}?search_path={schema}"
                    fill_postgres(url, rows)
                fill_s = time.perf_counter() - fill_start
                try:
                    proc, base = serve(workdir, url)
                    try:
                        entry = measure_server(base, proc, dids, requests, empty_rss)
                    finally:
                        proc.stop()
                    entry["fill_s"] = fill_s
                    if backend == "sqlite" and size <= 10_000:
                        entry["parse_all"] = measure_parse_all(
                            workdir / "tidegate.db", 20 if size <= 1_000 else 3)
                finally:
                    if schema:
                        asyncio.run(_schema("DROP", schema))
            results[f"{backend}/{size}"] = entry
            print(f"  {backend} {size:>7,}: built in {entry['build_s']:.2f} s, "
                  f"+{entry['rss_delta_mib']:.0f} MiB; "
                  + ", ".join(f"{k} p99 {entry[k]['p99']:.1f} ms"
                              for k in [*QUERIES, "GET ddo"]), flush=True)
    results["seconds"] = time.perf_counter() - started
    return results


def render(results: dict[str, Any], sizes: tuple[int, ...], backends: tuple[str, ...]) -> str:
    lines = []
    small, large = min(sizes), max(sizes)
    for backend in backends:
        lines.append(f"### {backend}\n")
        header = ["query"] + [f"{s:,}: p50 / p99 ms" for s in sizes] + [
            f"p99 {large // 1000}k / {small // 1000}k", "target"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for name in [*QUERIES, "GET ddo"]:
            cells = [f"`{name}`" if name != "GET ddo" else "GET ddo/<did>"]
            for size in sizes:
                figure = results[f"{backend}/{size}"][name]
                hits = f" ({int(figure['hits']):,} hits)" if "hits" in figure else ""
                cells.append(f"{figure['p50']:.2f} / {figure['p99']:.2f}{hits}")
            ratio = (results[f"{backend}/{large}"][name]["p99"]
                     / results[f"{backend}/{small}"][name]["p99"])
            cells.append(f"{ratio:.1f}")
            if name in TARGETED:
                p99 = results[f"{backend}/{large}"][name]["p99"]
                met = p99 < TARGET_P99_MS and ratio < TARGET_RATIO
                cells.append(f"p99 < {TARGET_P99_MS:.0f} ms and ratio < {TARGET_RATIO:.0f}: "
                             f"**{'yes' if met else 'no'}**")
            else:
                cells.append("-")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        build = "; ".join(
            f"{s:,}: {results[f'{backend}/{s}']['build_s']:.2f} s, "
            f"+{results[f'{backend}/{s}']['rss_delta_mib']:.0f} MiB"
            f" (RSS {results[f'{backend}/{s}']['rss_mib']:.0f} MiB)" for s in sizes)
        lines.append(f"Index build (first query after start: the background build it "
                     f"waits for) and RSS added over an empty store's server "
                     f"({results[f'{backend}/idle_rss']:.0f} MiB): {build}.\n")
    baseline = [s for s in sizes if "parse_all" in results.get(f"sqlite/{s}", {})]
    if baseline:
        lines.append("### Baseline: the old approach (parse every DDO per query), SQLite, "
                     "in process\n")
        header = ["query"] + [f"{s:,}: p50 / p99 ms" for s in baseline] + [
            f"index p50 at {s:,} (HTTP)" for s in baseline]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for name in QUERIES:
            cells = [f"`{name}`"]
            for s in baseline:
                figure = results[f"sqlite/{s}"]["parse_all"][name]
                cells.append(f"{figure['p50']:.1f} / {figure['p99']:.1f}")
            for s in baseline:
                cells.append(f"{results[f'sqlite/{s}'][name]['p50']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=200,
                        help="timed requests per query and size (after 5 warm-up)")
    parser.add_argument("--markdown", default=None, help="also write the tables to this file")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(int(s) for s in args.sizes.split(",")))
    backends = tuple(b for b in args.backends.split(",") if b)
    results = run(sizes, backends, args.requests)
    text = render(results, sizes, backends)
    print()
    print(text)
    print(f"whole run {results['seconds']:.0f} s; mean DDO {results['doc_bytes']:.0f} bytes")
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
