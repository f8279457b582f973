"""Instructions per request, counted by callgrind: a figure the machine's load cannot move.

wrk figures (bench.run) move with whatever else the two cores are doing; comparing two
revisions of Tidegate that way needs a quiet machine. This bench drives Tidegate's ASGI
application in-process (no sockets, no uvicorn: the HTTP parser is not Tidegate's code)
and counts the CPU instructions of N requests to one route with valgrind's callgrind,
between two dumps of its counters (``callgrind_control -d``) after start-up and W
warm-up requests per route, so neither is in a figure. The count is repeatable to a
fraction of a percent, so two revisions can be compared on a busy machine:

    python -m bench.instructions [--routes nonce,root,bad_initialize] [--requests 2000]
                                 [--src DIR]...    # one column per source tree
                                 [--env NAME=VALUE]...  # settings for every run

``--src`` puts another checkout's ``src`` first on ``PYTHONPATH`` (e.g. a worktree of an
older commit), so one run prints both revisions side by side.

``--chain`` adds the routes that need a chain and an origin: ``initialize`` (a fee
quote for a published asset, file check included) and ``download`` (a signed 1 KiB
download of an ordered asset, a fresh nonce each time). The bench then starts anvil,
deploys the contracts, publishes and orders one asset and serves its file from a local
origin, all outside the measured process (their work is not counted); the metadata
state read is kept for the whole run (``TIDEGATE_CHAIN_STATE_TTL``), so every revision
measures the same cached path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "0x" + "5b" * 32
CONSUMER = "0x" + "ab" * 20

# route name -> (method, path, query string)
ROUTES: dict[str, tuple[str, str, str]] = {
    "nonce": ("GET", "/api/services/nonce", f"userAddress={CONSUMER}"),
    "root": ("GET", "/", ""),
    "bad_initialize": ("GET", "/api/services/initialize", "documentId=did%3Aop%3Axyz"),
}


#: with ``--chain``: route name -> one query string per request, in order (file in env)
CHAIN_ROUTES: Final = ("initialize", "download")
_QUERIES_ENV: Final = "TIDEGATE_BENCH_QUERIES"


def _chain_setup(workdir: Path, total: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Start the origin and anvil, publish and order one asset: the measured process's
    settings and, per chain route, ``total`` query strings (downloads signed in order)."""
    from bench.chain import PROVIDER_KEY as BENCH_KEY
    from bench.chain import Wallet, deploy_chain, start_chain
    from bench.origin import start_aiohttp

    files = workdir / "files"
    files.mkdir()
    (files / "small.csv").write_bytes((b"id,value\n" + os.urandom(2048))[:1024])
    _origin, origin_url = start_aiohttp(files)
    _chain, chain_url, label = start_chain("anvil")
    chain = deploy_chain(chain_url, label, workdir)
    asset = chain.publish("bench 1 KiB", origin_url + "/small.csv", "http://127.0.0.1:8030")
    wallet = Wallet("instructions-0")
    chain.order_for(asset, [wallet])
    initialize = (f"documentId={asset.did}&serviceId=0&consumerAddress={wallet.address}")
    queries = {"initialize": [initialize] * total,
               "download": [wallet.download_path(asset).split("?", 1)[1]
                            for _ in range(total)],
               "did": [asset.did]}
    env = {"PROVIDER_PRIVATE_KEY": BENCH_KEY, "NETWORK_URL": chain_url,
           "ADDRESS_FILE": str(chain.address_file), "TIDEGATE_INDEXER": "true",
           "TIDEGATE_ALLOW_PRIVATE_URLS": "true", "TIDEGATE_CHAIN_STATE_TTL": "86400",
           "TIDEGATE_PROBES_PER_CLIENT": "100000"}
    return env, queries


def _environment(workdir: Path) -> dict[str, str]:
    address_file = workdir / "address.json"
    fake = {name: "0x" + f"{n:02x}" * 20 for n, name in enumerate(
        ("Ocean", "Router", "FixedPrice", "Dispenser", "ERC721Factory"), start=1)}
    address_file.write_text(json.dumps({"development": {"chainId": 8996, "startBlock": 0,
                                                          **fake}}))
    return {
        "PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY}),
        "NETWORK_URL": json.dumps({"8996": "http://127.0.0.1:9"}),
        "ADDRESS_FILE": str(address_file),
        "TIDEGATE_DATA_DIR": str(workdir / "data"),
        "TIDEGATE_ACCESS_LOG": "false",
        "TIDEGATE_INDEXER": "false",
        "TIDEGATE_RATE_LIMIT": "false",
        "IPFS_GATEWAY": "",
        "ARWEAVE_GATEWAY": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONHASHSEED": "0",
    }


def _load_queries() -> dict[str, list[str]]:
    listing = os.environ.get(_QUERIES_ENV)
    return json.loads(Path(listing).read_text()) if listing else {}


async def _serve_commands(warmup: int, queries: dict[str, list[str]]) -> None:
    """Child process: lifespan start-up, ``warmup`` requests to every route, then one
    batch per ``ROUTE COUNT`` line read from stdin (``DONE`` after each)."""
    from tidegate.app import app_from_env

    app: Any = app_from_env()
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    ready, stopped = asyncio.Event(), asyncio.Event()

    async def lifespan_receive() -> dict[str, Any]:
        return await lifespan_in.get()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            ready.set()
        elif message["type"] == "lifespan.startup.failed":
            raise SystemExit(f"start-up failed: {message.get('message')}")
        elif message["type"] == "lifespan.shutdown.complete":
            stopped.set()

    await lifespan_in.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                        "state": {}}, lifespan_receive, lifespan_send))
    await ready.wait()
    statuses: dict[str, dict[int, int]] = {}

    routes: dict[str, tuple[str, str, str]] = {
        **ROUTES, **{name: ("GET", f"/api/services/{name}", "") for name in CHAIN_ROUTES
                     if name in queries}}
    used = dict.fromkeys(routes, 0)
    idle = asyncio.Event()  # never set: after its body, a request's client just waits

    def receiver() -> Any:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # a connected client: no more messages (a disconnect watcher waits)
                await idle.wait()
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return receive

    async def run(route: str, count: int) -> None:
        method, path, query = routes[route]
        seen = statuses.setdefault(route, {})

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen[message["status"]] = seen.get(message["status"], 0) + 1

        for _ in range(count):
            if route in queries:
                query = queries[route][used[route]]
                used[route] += 1
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": method, "scheme": "http", "path": path,
                "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
                "headers": [(b"host", b"127.0.0.1:8030"), (b"user-agent", b"bench")],
                "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8030), "state": {},
            }
            await app(scope, receiver(), send)

    if "did" in queries:  # the indexer must have the published asset first
        await _until_indexed(app, queries["did"][0])
    for route in routes:
        await run(route, warmup)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).split():
        route, count = line[0], int(line[1])
        if route != "noop":
            await run(route, count)
        print("DONE", flush=True)
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await stopped.wait()
    await lifespan
    print(json.dumps({"statuses": statuses}), file=sys.stderr)


async def _until_indexed(app: Any, did: str) -> None:
    path = f"/api/aquarius/assets/ddo/{did}"
    for _ in range(1200):
        status: list[int] = []

        async def send(message: dict[str, Any], status: list[int] = status) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                   "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                   "query_string": b"", "root_path": "", "state": {},
                   "headers": [(b"host", b"127.0.0.1:8030")], "client": ("127.0.0.1", 40000),
                   "server": ("127.0.0.1", 8030)}, receive, send)
        if status == [200]:
            return
        await asyncio.sleep(0.25)
    raise SystemExit("the published asset was not indexed within 300 s")


class _Counted:
    """One valgrind process running :func:`_serve_commands`; :meth:`count` is the
    instructions of one batch: callgrind dumps (and zeroes) its counters before and after
    it (``callgrind_control -d``), so start-up and warm-up are never in a figure."""

    def __init__(self, src: Path, workdir: Path, extra: dict[str, str], warmup: int) -> None:
        self._out = workdir / "callgrind.out"
        env = {**os.environ, **_environment(workdir), **extra, "PYTHONPATH": str(src)}
        self._proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self._out}",
             sys.executable, "-m", "bench.instructions", "--child", str(warmup)],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self._dumps = 0
        self._expect("READY")

    def _expect(self, word: str) -> None:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if line != word:
            self._proc.kill()
            _, err = self._proc.communicate()
            raise SystemExit(f"the measured process said {line!r}:\n{err[-3000:]}")

    def _dump(self) -> int:
        subprocess.run(["callgrind_control", "-d", str(self._proc.pid)], check=True,
                       capture_output=True)
        self._dumps += 1
        dump = self._out.with_name(f"{self._out.name}.{self._dumps}")
        text = dump.read_text(errors="replace")
        match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if match is None:
            raise SystemExit(f"no totals in {dump}")
        return int(match.group(1))

    def count(self, route: str, requests: int) -> int:
        assert self._proc.stdin is not None
        self._dump()
        self._proc.stdin.write(f"{route} {requests}\n")
        self._proc.stdin.flush()
        self._expect("DONE")
        return self._dump()

    def close(self) -> dict[str, dict[str, int]]:
        """Stop the process; the HTTP statuses it saw per route (warm-up included)."""
        _, err = self._proc.communicate(timeout=600)  # closes stdin: the child ends
        for line in reversed(err.splitlines()):
            if line.startswith('{"statuses"'):
                statuses: dict[str, dict[str, int]] = json.loads(line)["statuses"]
                return statuses
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--src", action="append", default=[], metavar="DIR")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every run (e.g. TIDEGATE_RATE_LIMIT=true)")
    parser.add_argument("--chain", action="store_true",
                        help="also measure initialize and a signed download (starts anvil)")
    parser.add_argument("--child", metavar="WARMUP", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_serve_commands(args.child, _load_queries()))
        return 0
    sources = [Path(s).resolve() for s in args.src] or [REPO / "src"]
    extra = dict(item.split("=", 1) for item in args.env)
    routes = [r for r in args.routes.split(",") if r]
    if args.chain:
        return _with_chain(args, sources, extra, routes)
    return _measure(args, sources, extra, routes)


def _with_chain(args: argparse.Namespace, sources: list[Path], extra: dict[str, str],
                routes: list[str]) -> int:
    from bench.procs import stop_all

    with tempfile.TemporaryDirectory(prefix="tg-instr-chain-") as tmp:
        try:
            env, queries = _chain_setup(Path(tmp), args.warmup + args.requests)
            listing = Path(tmp) / "queries.json"
            listing.write_text(json.dumps(queries))
            return _measure(args, sources, {**env, _QUERIES_ENV: str(listing), **extra},
                            routes + [r for r in CHAIN_ROUTES if r not in routes])
        finally:
            stop_all()


def _measure(args: argparse.Namespace, sources: list[Path], extra: dict[str, str],
             routes: list[str]) -> int:
    print(f"instructions per request (callgrind; {args.requests} requests after "
          f"{args.warmup} warm-up, in-process ASGI)"
          + (f"; settings {' '.join(args.env)}" if args.env else ""))
    header = "| route | " + " | ".join(str(s) for s in sources) + " |"
    print(header)
    print("|---|" + "---|" * len(sources))
    columns: dict[Path, dict[str, int]] = {}
    statuses: dict[Path, dict[str, dict[str, int]]] = {}
    for src in sources:
        with tempfile.TemporaryDirectory(prefix="tg-instr-") as tmp:
            counted = _Counted(src, Path(tmp), extra, args.warmup)
            try:
                # The batch overhead (a stdin line, a print) is measured and subtracted.
                overhead = counted.count("noop", 0)
                columns[src] = {route: counted.count(route, args.requests) - overhead
                                for route in routes}
            finally:
                statuses[src] = counted.close()
    for route in routes:
        cells = [f"{columns[src][route] / args.requests:,.0f}" for src in sources]
        print(f"| {route} | " + " | ".join(cells) + " |", flush=True)
    for src in sources:  # a figure of error answers would measure another path
        print(f"statuses seen by {src}: {statuses[src]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
