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


async def _serve_commands(warmup: int) -> None:
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

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run(route: str, count: int) -> None:
        method, path, query = ROUTES[route]
        seen = statuses.setdefault(route, {})

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen[message["status"]] = seen.get(message["status"], 0) + 1

        for _ in range(count):
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": method, "scheme": "http", "path": path,
                "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
                "headers": [(b"host", b"127.0.0.1:8030"), (b"user-agent", b"bench")],
                "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8030), "state": {},
            }
            await app(scope, receive, send)

    for route in ROUTES:
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

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--src", action="append", default=[], metavar="DIR")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every run (e.g. TIDEGATE_RATE_LIMIT=true)")
    parser.add_argument("--child", metavar="WARMUP", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_serve_commands(args.child))
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
    columns: dict[Path, dict[str, int]] = {}
    for src in sources:
        with tempfile.TemporaryDirectory(prefix="tg-instr-") as tmp:
            counted = _Counted(src, Path(tmp), extra, args.warmup)
            try:
                # The batch overhead (a stdin line, a print) is measured and subtracted.
                overhead = counted.count("noop", 0)
                columns[src] = {route: counted.count(route, args.requests) - overhead
                                for route in routes}
            finally:
                counted.close()
    for route in routes:
        cells = [f"{columns[src][route] / args.requests:,.0f}" for src in sources]
        print(f"| {route} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
