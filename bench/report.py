"""Render the benchmark's results as markdown (printed and written to bench/results.md)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MB_PER_MIB = 1.048576

# reference-performance.md: ocean-provider 2.1.6 (gunicorn sync workers), same kind of
# machine, anvil, nginx origin; medians of 3 runs; its connection counts were 1/16/64.
REFERENCE = {
    "root": "241 / 254 / 247 req/s at 1/16/64 conn. (1 worker); 235 / 448 / 457 (2 workers)",
    "nonce": "729 / 746 / 730 req/s at 1/16/64 conn. (1 worker); 705 / 1,426 / 1,427 "
             "(2 workers); p50/p99 at 64: 87/109 ms (1 w), 45/50 ms (2 w)",
    "initialize": "not measured",
    "one_gib": "157 MB/s through /download = 7.5% of 2,105 MB/s straight from nginx",
    "rss": "85 MiB streaming; 94 MiB with 8 streams (served one at a time)",
    "nonce_under_load": "no answer until 8 x 1 GiB downloads ended (49 s); 32 s with 2 workers",
    "signed": "12.3 downloads/s (1 worker), 22.9/s (2 workers), 8 clients; p50 657 / 332 ms",
    "rpc": "several RPC calls per download, ~80 ms CPU before the first byte",
}


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) \
        else "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                           if ln.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    sha = _run(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    dirty = _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tidegate": sha[:12] + (" (with uncommitted changes)" if dirty not in ("", "?") else ""),
        "uvicorn": _version("uvicorn"), "uvloop": _version("uvloop"),
        "httptools": _version("httptools"), "starlette": _version("starlette"),
        "httpx": _version("httpx"), "aiohttp": _version("aiohttp"), "web3": _version("web3"),
        "wrk": _run(["wrk", "-v"]).split(" [")[0], "curl": _run(["curl", "--version"])
        .split(" (")[0],
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}" if value < 10 else f"{value:,.0f}")


def _rps(row: dict[str, Any] | None) -> str:
    return "-" if not row else f"{row['ok_rps']:,.0f}"


def _ok(flag: bool | None) -> str:
    return "n/a" if flag is None else ("**yes**" if flag else "**no**")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _row(results: dict[str, Any], key: str, label: str, connections: int) -> dict[str, Any] | None:
    for row in results.get(key, {}).get(label, []):
        if row["connections"] == connections:
            return row  # type: ignore[no-any-return]
    return None


def targets(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    gib = results.get("one_gib")
    if gib:
        rows.append(["1 GiB download, 1 worker", f"{gib['tidegate_mb_s']:,} MB/s",
                     f"{gib['direct_mb_s']:,} MB/s straight from the origin", _pct(gib["ratio"]),
                     "≥ 80% of direct", _ok(gib["ratio"] >= 0.8), REFERENCE["one_gib"]])
    many = results.get("many")
    if many:
        rss_mb = many["peak_rss_mib"] * MB_PER_MIB
        rows.append([f"peak RSS, {many['streams']} concurrent 100 MiB downloads (1 worker)",
                     f"{many['peak_rss_mib']:.0f} MiB ({rss_mb:.0f} MB)",
                     f"{many['rss_before_mib']:.0f} MiB idle before", "-", "< 150 MB",
                     _ok(rss_mb < 150), REFERENCE["rss"]])
        probe = many["nonce_probe"]
        rows.append(["`/nonce` p99 during that load", f"{_ms(probe['p99_ms'])} ms "
                     f"(max {_ms(probe['max_ms'])}, {probe['errors']} errors)",
                     f"{_ms(many['nonce_probe_idle']['p99_ms'])} ms idle", "-", "< 100 ms",
                     _ok(probe["p99_ms"] < 100 and probe["errors"] == 0),
                     REFERENCE["nonce_under_load"]])
    nonce, hello = _row(results, "tidegate_1w", "nonce", 256), _row(results, "hello_1w", "hello",
                                                                     256)
    if nonce and hello:
        ratio = nonce["ok_rps"] / hello["ok_rps"]
        starlette = _row(results, "starlette_1w", "hello", 256)
        extra = (f"; {nonce['ok_rps'] / starlette['ok_rps']:.0%} of a Starlette hello "
                 f"({_rps(starlette)} req/s)") if starlette else ""
        rows.append(["`GET /nonce` at 256 connections, 1 worker", f"{_rps(nonce)} req/s",
                     f"{_rps(hello)} req/s bare ASGI hello{extra}", _pct(ratio),
                     "≥ 50% of bare ASGI", _ok(ratio >= 0.5), REFERENCE["nonce"]])
    nonce2, hello2 = _row(results, "tidegate_2w", "nonce", 256), _row(results, "hello_2w",
                                                                      "hello", 256)
    if nonce2 and hello2:
        ratio = nonce2["ok_rps"] / hello2["ok_rps"]
        rows.append(["`GET /nonce` at 256 connections, 2 workers", f"{_rps(nonce2)} req/s",
                     f"{_rps(hello2)} req/s bare ASGI hello", _pct(ratio),
                     "≥ 50% of bare ASGI", _ok(ratio >= 0.5), ""])
    signed = results.get("signed_2w")
    if signed:
        rows.append([f"signed 1 KiB download, 2 workers, {signed['connections']} wallets/conn.",
                     f"{signed['ok_rps']:,.0f} req/s (p50 {_ms(signed['p50_ms'])} ms, "
                     f"{signed['errors']} errors)",
                     f"1 worker: {results.get('signed_1w', {}).get('ok_rps', 0):,.0f} req/s",
                     "-", "≥ 1,000 req/s", _ok(signed["ok_rps"] >= 1000 and
                                               signed["errors"] == 0), REFERENCE["signed"]])
    rpc = results.get("rpc")
    if rpc:
        warm = rpc["warm"]["rpc_per_download"]
        rows.append(["RPC round trips per download, warm", f"{warm:.2f}",
                     f"cold: {rpc['process_cold']['rpc_per_download']:.0f} (first in process), "
                     f"{rpc['order_cold']['rpc_per_download']:.0f} (new order)", "-", "≤ 3",
                     _ok(warm <= 3), REFERENCE["rpc"]])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def render(results: dict[str, Any]) -> str:
    info = machine()
    lines = [
        "# Tidegate benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run`); see bench/README.md for the method "
        "and what limits each figure. Every ratio compares two figures measured in this same "
        "run on this machine. MB/s = 10^6 bytes/s; RSS = VmHWM of the serving process(es).",
        "",
        f"- date: {info['date']}; whole run {results.get('total_seconds', '?')} s",
        f"- machine: {info['cores']} cores ({info['cpu']}), {info['ram']} RAM, Linux "
        f"{info['kernel']}; load generators, chain, origin and Tidegate all share it",
        f"- versions: Python {info['python']}, uvicorn {info['uvicorn']} (uvloop "
        f"{info['uvloop']}, httptools {info['httptools']}), starlette {info['starlette']}, "
        f"httpx {info['httpx']}, aiohttp {info.get('aiohttp', '?')}, web3 {info['web3']}; "
        f"{info['wrk']}; {info['curl']}",
        f"- tidegate: git {info['tidegate']}, run as `tidegate serve --workers N`"
        + (f" with {', '.join(results['extra_env'])}" if results.get("extra_env") else ""),
        f"- chain (every figure): {results.get('chain', '?')}",
        f"- origin file server: {results.get('origin', '?')} on loopback "
        f"(1 GiB measured: {results.get('origin_candidates', {})} MB/s; the faster is used "
        "for both the direct baseline and Tidegate's upstream)",
        f"- wrk runs: {results.get('seconds_per_run')} s each after a 1 s warm-up",
        "",
        "## Targets (issue #7)",
        "",
    ]
    lines += _table(["figure", "Tidegate (this run)", "baseline (this run)", "ratio", "target",
                     "met", "reference Provider"], targets(results))
    failures = results.get("failures", {})
    if failures:
        lines += ["", "Scenarios that could not run:", ""]
        lines += [f"- {name}: {reason}" for name, reason in failures.items()]

    lines += ["", "## Unsigned routes (wrk --latency)", "",
              "req/s counts only 2xx answers; p50/p99 in ms; ratio = req/s ÷ the bare ASGI "
              "hello app on the same uvicorn settings and worker count.", ""]
    rows = []
    for workers in (1, 2):
        hello_key = f"hello_{workers}w"
        for label, key in (("bare ASGI hello", hello_key),
                           ("Starlette hello", f"starlette_{workers}w"),
                           ("`GET /`", f"tidegate_{workers}w"),
                           ("`GET /nonce`", f"tidegate_{workers}w"),
                           ("`GET /initialize`", f"tidegate_{workers}w")):
            name = {"`GET /`": "root", "`GET /nonce`": "nonce",
                    "`GET /initialize`": "initialize"}.get(label, "hello")
            cells = [label, str(workers)]
            present = False
            for connections in (1, 16, 256):
                row = _row(results, key, name, connections)
                base = _row(results, hello_key, "hello", connections)
                if row:
                    present = True
                    ratio = row["ok_rps"] / base["ok_rps"] if base else None
                    err = f", {row['errors']} err" if row["errors"] else ""
                    cells.append(f"{_rps(row)} ({_pct(ratio)}) {_ms(row['p50_ms'])}/"
                                 f"{_ms(row['p99_ms'])}{err}")
                else:
                    cells.append("-")
            if present:
                rows.append(cells)
    lines += _table(["route", "workers", "1 conn.: req/s (ratio) p50/p99",
                     "16 conn.", "256 conn."], rows)
    n1, n2 = _row(results, "tidegate_1w", "nonce", 256), _row(results, "tidegate_2w", "nonce",
                                                              256)
    if n1 and n2:
        lines += ["", f"Scaling, `/nonce` at 256 connections: {_rps(n1)} req/s on 1 worker, "
                  f"{_rps(n2)} on 2 workers (x{n2['ok_rps'] / n1['ok_rps']:.2f})."]

    lines += ["", "## Signed downloads of a 1 KiB file", "",
              "Pre-signed URLs, one wallet (with its own order) per connection, each nonce "
              "fresh and increasing; order validation included. wrk, one connection per "
              "thread.", ""]
    rows = []
    for workers in (1, 2):
        row = results.get(f"signed_{workers}w")
        if row:
            rows.append([str(workers), str(row["connections"]), _rps(row), _ms(row["p50_ms"]),
                         _ms(row["p99_ms"]), str(row["errors"])])
    lines += _table(["workers", "connections", "req/s (200 only)", "p50 ms", "p99 ms",
                     "non-200 / errors"], rows)
    single = results.get("latency_direct")
    if single:
        lines += ["", f"One client, one connection, 1 worker: first download of a new order "
                  f"{_ms(single['order_cold_ms'])} ms; warm p50 {_ms(single['warm_p50_ms'])} ms "
                  f"(min {_ms(single['warm_min_ms'])} ms)."]
    rpc = results.get("rpc")
    if rpc:
        lines += ["", "### Order validation: JSON-RPC calls per download", "",
                  "Counted by a proxy in front of the chain (bench/rpc_proxy.py), 1 worker, "
                  "indexer off so only the download's own calls reach it. Latency includes "
                  "the proxy hop.", ""]
        rows = []
        for label, title in (("process_cold", "first download after start (cold process)"),
                             ("order_cold", "new order, warm process"),
                             ("warm", "same order again (warm), mean of "
                              f"{rpc['warm']['downloads']}"),
                             ("warm_after_1s", "warm, > 1 s after the previous")):
            row = rpc[label]
            methods = ", ".join(f"{k} {v}" for k, v in sorted(row["methods"].items()))
            rows.append([title, f"{row['rpc_per_download']:.2f}", methods, _ms(row["p50_ms"])])
        lines += _table(["case", "RPC calls / download", "methods (total)", "p50 ms"], rows)

    gib = results.get("one_gib")
    if gib:
        lines += ["", "## 1 GiB download", "",
                  f"curl to /dev/null, median of {gib['runs']} runs each, 1 worker: "
                  f"{gib['tidegate_mb_s']:,} MB/s through Tidegate vs {gib['direct_mb_s']:,} "
                  f"MB/s straight from the origin ({_pct(gib['ratio'])}). Peak RSS while "
                  f"streaming: {gib['peak_rss_mib']:.0f} MiB ({gib['rss_before_mib']:.0f} MiB "
                  "before)."]
    many = results.get("many")
    if many:
        probe, idle = many["nonce_probe"], many["nonce_probe_idle"]
        lines += ["", f"## {many['streams']} concurrent 100 MiB downloads, one slow reader", "",
                  f"- {many['fast_completed']} of {many['streams'] - 1} curl downloads complete "
                  f"and intact (statuses {many['statuses']}) in {many['seconds']} s: "
                  f"{many['total_mb_s']:,} MB/s in total",
                  "- the slow reader (~1 MB/s) had received "
                  f"{many['slow_reader_bytes'] / 2**20:.1f} MiB when the others finished "
                  f"(status {many['slow_reader_status']})",
                  f"- Tidegate peak RSS {many['peak_rss_mib']:.0f} MiB "
                  f"({many['rss_before_mib']:.0f} MiB before)",
                  f"- `/nonce` probe every 20 ms on one keep-alive connection: p50 "
                  f"{_ms(probe['p50_ms'])} ms, p99 {_ms(probe['p99_ms'])} ms, max "
                  f"{_ms(probe['max_ms'])} ms, {probe['errors']} errors, {probe['samples']} "
                  f"answers (idle before: p50 {_ms(idle['p50_ms'])}, p99 {_ms(idle['p99_ms'])} ms)"]
    lines += ["", "## Reference Provider (reference-performance.md, for comparison)", "",
              "ocean-provider 2.1.6, gunicorn sync workers, anvil, nginx origin, same kind of "
              "2-core machine, load generator pinned to one core, medians of 3 runs. Its "
              "connection counts were 1/16/64 (ours 1/16/256).", ""]
    lines += [f"- {k}: {v}" for k, v in REFERENCE.items()]
    return "\n".join(lines) + "\n"
