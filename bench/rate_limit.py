"""``python -m bench.rate_limit``: what the rate limit costs on ``GET /api/services/nonce``.

Runs ``tidegate serve`` (a real uvicorn subprocess, uvloop + httptools) in each
configuration below, one at a time, rounds interleaved so that drift on the shared
machine hits every configuration alike, and drives it with wrk from one address:

- ``off``: ``TIDEGATE_RATE_LIMIT=false``.
- ``on``: the limiter on with the read class raised out of reach (rate 100000/s,
  burst 10^9), so every request pays the full bookkeeping (client key, GCRA, pending
  count, batches to the shared SQLite file every 100 ms) and none is refused.
- ``on-redis``: the same, shared through Redis (when ``--redis URL`` answers).
- ``defaults``: the default limits: after the first burst wrk mostly gets 429s; the
  figure is all answers per second (how cheap a refusal is), with the 200s beside it.

Then the same comparison without the network, which the machine's noise does not blur:
the app called in process (``await app(scope, receive, send)``) for ``/nonce`` on its
hot path, off and on, best of 5 × 50,000 requests.

Prints a table (median req/s of the rounds, ratio to ``off``) and, with ``--output``,
writes it as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import Proc, cpu_ticks, free_port, server_pids, stop_all, wait_http, wait_settled
from bench.wrk import WrkResult, run_get

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")

REPO = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
ADDRESS = "0x" + "ab" * 20
PATH = f"/api/services/nonce?userAddress={ADDRESS}"
OUT_OF_REACH = {"TIDEGATE_RATE_LIMIT_READ_RATE": "100000",
                "TIDEGATE_RATE_LIMIT_READ_BURST": "1000000000"}


def log(message: str) -> None:
    print(f"[rate-limit bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]),
        "PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY}),
        # JSON form: the chain id comes from the map, nothing calls the RPC.
        "NETWORK_URL": json.dumps({"8996": "http://127.0.0.1:9"}),
        "TIDEGATE_DATA_DIR": str(data_dir),
        "TIDEGATE_INDEXER": "false",
        "TIDEGATE_ACCESS_LOG": "false",
        "IPFS_GATEWAY": "",
        "ARWEAVE_GATEWAY": "",
        "LOG_LEVEL": "WARNING",
    })
    return env


def redis_answers(url: str) -> bool:
    rest = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = rest.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def measure(name: str, env: dict[str, str], workers: int, connections: int, seconds: float,
            workdir: Path) -> tuple[WrkResult, float]:
    """wrk's result and the server's CPU time per answer (µs, all workers)."""
    port = free_port()
    proc = Proc(f"tidegate-{name}", [sys.executable, "-m", "tidegate", "serve", "--host",
                                     "127.0.0.1", "--port", str(port), "--workers",
                                     str(workers)], env=env, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", proc, timeout=90)
        wait_settled(proc, workers)
        run_get(url + PATH, 16, 1, workdir)  # warm-up (caches, connections)
        time.sleep(1.2)  # the defaults' bucket refills between warm-up and measurement
        pids = server_pids(proc)
        before = cpu_ticks(pids)
        result = run_get(url + PATH, connections, seconds, workdir)
        cpu_us = (cpu_ticks(pids) - before) * TICK_US / max(1, result.requests)
    finally:
        proc.stop()
    return result, cpu_us


def in_process(extra: dict[str, str], data_dir: Path, requests: int = 50_000) -> float:
    """µs per ``GET /nonce`` through ``TidegateApp`` itself (best of 5 runs)."""
    import asyncio

    sys.path.insert(0, str(REPO / "src"))  # this checkout's tidegate, not an installed one
    from tidegate.app import create_app
    from tidegate.settings import Settings

    env = {k: v for k, v in base_env(data_dir).items() if k.startswith(("TIDEGATE_",
                                                                          "PROVIDER_",
                                                                          "NETWORK_", "IPFS",
                                                                          "ARWEAVE"))}
    app = create_app(Settings.from_env({**env, **extra}))
    address = PATH.partition("=")[2].encode()
    scope = {"type": "http", "method": "GET", "path": PATH.partition("?")[0],
             "query_string": b"userAddress=" + address, "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")],
             "client": ("127.0.0.1", 40000)}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: object) -> None:
        pass

    async def run() -> float:
        async with app.router.lifespan_context(app):
            for _ in range(2000):
                await app(scope, receive, send)
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(requests):
                    await app(scope, receive, send)
                best = min(best, (time.perf_counter() - started) / requests * 1e6)
            return best

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15",
                        help="Redis for the on-redis case (skipped when it does not answer)")
    parser.add_argument("--output", type=Path, default=None, help="write a Markdown table")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tidegate-rl-bench-") as tmp:
        workdir = Path(tmp)
        configs: dict[str, dict[str, str]] = {
            "off": {"TIDEGATE_RATE_LIMIT": "false"},
            "on": dict(OUT_OF_REACH),
        }
        if redis_answers(args.redis):
            configs["on-redis"] = {**OUT_OF_REACH, "TIDEGATE_REDIS_URL": args.redis}
        else:
            log(f"no Redis at {args.redis}: skipping on-redis")
        configs["defaults"] = {}
        results: dict[str, list[WrkResult]] = {name: [] for name in configs}
        cpu: dict[str, list[float]] = {name: [] for name in configs}
        try:
            names = list(configs)
            for round_ in range(1, args.rounds + 1):
                shift = (round_ - 1) % len(names)  # each configuration takes each place
                for name in names[shift:] + names[:shift]:
                    extra = configs[name]
                    data_dir = workdir / f"data-{name}-{round_}"
                    env = {**base_env(data_dir), **extra}
                    result, cpu_us = measure(name, env, args.workers, args.connections,
                                             args.seconds, workdir)
                    results[name].append(result)
                    cpu[name].append(cpu_us)
                    log(f"round {round_} {name:<9} {result.rps:9,.0f} answers/s  "
                        f"{result.ok_rps:9,.0f} 2xx/s  {cpu_us:6.1f} µs CPU/answer  "
                        f"p99 {result.p99_ms:6.2f} ms  non-2xx {result.errors}")
        finally:
            stop_all()

    off = statistics.median(r.rps for r in results["off"])
    off_cpu = statistics.median(cpu["off"])
    lines = [
        f"`GET /api/services/nonce`, wrk {args.connections} connections from one address, "
        f"{args.workers} worker(s), {args.seconds:g} s x {args.rounds} rounds (median); "
        f"`python -m bench.rate_limit` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores "
        f"(1-minute load average {load_before:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after: other processes share the cores).",
        "",
        "| configuration | answers/s | 2xx/s | ratio to off (median of rounds) | "
        "server CPU µs/answer | CPU ratio | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ratio(name: str) -> float:
        """The median of the per-round ratios: each round's runs share the machine's load."""
        return statistics.median(r.rps / o.rps for r, o in zip(results[name], results["off"],
                                                               strict=True))

    for name, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        ok = statistics.median(r.ok_rps for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        per = statistics.median(cpu[name])
        lines.append(f"| {name} | {rps:,.0f} | {ok:,.0f} | {ratio(name):.3f} | {per:.1f} | "
                     f"{per / off_cpu:.3f} | {p99:.2f} |")
    on_ratio = ratio("on")
    on_cpu = statistics.median(cpu["on"])
    with tempfile.TemporaryDirectory(prefix="tidegate-rl-bench-") as tmp:
        app_off = in_process(configs["off"], Path(tmp) / "off")
        app_on = in_process(configs["on"], Path(tmp) / "on")
    lines += ["", f"limiter on / off: {on_ratio:.3f} req/s ({100 * (on_ratio - 1):+.1f}%), "
              f"CPU per request {on_cpu / off_cpu:.3f} ({100 * (on_cpu / off_cpu - 1):+.1f}%)",
              "",
              f"in process (no network, no uvicorn): {app_off:.2f} µs per /nonce off, "
              f"{app_on:.2f} µs on: +{app_on - app_off:.2f} µs per request, "
              f"{100 * (app_on - app_off) * off / 1e6:.1f}% of the {1e6 / off:.1f} µs a request "
              "takes at the off throughput above"]
    text = "\n".join(lines)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
