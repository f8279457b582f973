"""Instructions per request, counted by callgrind: a figure the machine's load cannot move.

wrk figures (bench.run) move with whatever else the two cores are doing; comparing two
revisions of Tidegate that way needs a quiet machine. This bench drives Tidegate's ASGI
application in-process (no sockets, no uvicorn: the HTTP parser is not Tidegate's code)
and counts the CPU instructions of N requests to one route with valgrind's callgrind,
as the difference between a run of W + N requests and a run of W requests (start-up,
imports and warm-up cancel out). The count is repeatable to a fraction of a percent, so
two revisions can be compared on a busy machine:

    python -m bench.instructions [--routes nonce,root,bad_initialize] [--requests 2000]
                                 [--src DIR]...    # one column per source tree
                                 [--env NAME=VALUE]...  # settings for every run

``--src`` puts another checkout's ``src`` first on ``PYTHONPATH`` (e.g. a worktree of an
older commit), so one run prints both revisions side by side.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "0x" + "5b" * 32
CONSUMER = "0x" + "ab" * 20

# route name -> (method, path, query string)
ROUTES: dict[str, tuple[str, str, str]] = {
    "nonce": ("GET", "/api/services/nonce", f"userAddress={CONSUMER}"),
    "root": ("GET", "/", ""),
    "bad_initialize": ("GET", "/api/services/initialize", "documentId=did%3Aop%3Axyz"),
}


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


async def _drive(route: str, count: int) -> None:
    """Child process: lifespan start-up, then ``count`` requests to ``route``."""
    from tidegate.app import app_from_env

    app: Any = app_from_env()
    method, path, query = ROUTES[route]
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    shutdown_done = asyncio.Event()
    await startup.put({"type": "lifespan.startup"})
    ready = asyncio.Event()

    async def lifespan_receive() -> dict[str, Any]:
        return await startup.get()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            ready.set()
        elif message["type"] == "lifespan.startup.failed":
            raise SystemExit(f"start-up failed: {message.get('message')}")
        elif message["type"] == "lifespan.shutdown.complete":
            shutdown_done.set()

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                        "state": {}}, lifespan_receive, lifespan_send))
    await ready.wait()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8030"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8030), "state": {},
    }
    statuses: dict[int, int] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    def sender() -> Callable[[dict[str, Any]], Any]:
        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1
        return send

    for _ in range(count):
        await app(dict(scope), receive, sender())
    await startup.put({"type": "lifespan.shutdown"})
    await shutdown_done.wait()
    await lifespan
    print(json.dumps({"statuses": statuses}), file=sys.stderr)


def _instructions(src: Path, route: str, count: int, workdir: Path,
                  extra: dict[str, str]) -> int:
    outfile = workdir / f"callgrind.{route}.{count}.out"
    env = {**os.environ, **_environment(workdir), **extra, "PYTHONPATH": str(src)}
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}",
           sys.executable, "-m", "bench.instructions", "--child", route, str(count)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"callgrind run failed ({src}, {route}, {count}):\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--src", action="append", default=[], metavar="DIR")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every run (e.g. TIDEGATE_RATE_LIMIT=true)")
    parser.add_argument("--child", nargs=2, metavar=("ROUTE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_drive(args.child[0], int(args.child[1])))
        return 0
    sources = [Path(s).resolve() for s in args.src] or [REPO / "src"]
    extra = dict(item.split("=", 1) for item in args.env)
    routes = [r for r in args.routes.split(",") if r]
    print(f"instructions per request (callgrind; {args.requests} requests after "
          f"{args.warmup} warm-up, in-process ASGI)"
          + (f"; settings {' '.join(args.env)}" if args.env else ""))
    header = "| route | " + " | ".join(str(s) for s in sources) + " |"
    print(header)
    print("|---|" + "---|" * len(sources))
    for route in routes:
        cells = []
        for src in sources:
            with tempfile.TemporaryDirectory(prefix="tg-instr-") as tmp:
                base = _instructions(src, route, args.warmup, Path(tmp), extra)
            with tempfile.TemporaryDirectory(prefix="tg-instr-") as tmp:
                full = _instructions(src, route, args.warmup + args.requests, Path(tmp),
                                     extra)
            cells.append(f"{(full - base) / args.requests:,.0f}")
        print(f"| {route} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
