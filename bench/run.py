"""``python -m bench.run`` (``make bench``): Tidegate's performance against baselines.

Starts a chain (anvil, else the in-process chain), an origin file server (nginx, else
aiohttp with sendfile; the faster one), deploys the Ocean contracts, publishes a
1 KiB, a 1 GiB and a 100 MiB file and orders them for many wallets, then runs
Tidegate as real ``tidegate serve`` processes and measures each scenario beside its
baseline from the same run. Prints the table and writes ``bench/results.md``.

Exits non-zero only when it cannot run; a slow figure is reported, not fatal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import origin as origin_mod
from bench import report
from bench.chain import (
    PROVIDER_KEY,
    BenchChain,
    Wallet,
    deploy_chain,
    find_anvil,
    start_chain,
)
from bench.loads import LatencyProbe, SlowReader, curl_get, curl_many
from bench.procs import (
    Proc,
    free_port,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    server_pids,
    stop_all,
    wait_http,
    wait_settled,
)
from bench.wrk import run_get, run_url_lists

REPO = Path(__file__).resolve().parent.parent
KIB, MIB, GIB = 1024, 1024**2, 1024**3
CONNECTIONS = (1, 16, 256)
SIGNED_CONNECTIONS = 16
MANY_STREAMS = 200
GROUPS = ("baselines", "unsigned", "signed", "large", "rpc")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    proc: Proc
    url: str
    workers: int

    def pids(self) -> list[int]:
        return server_pids(self.proc)

    def stop(self) -> None:
        self.proc.stop()


_FOREIGN_ENV = ("PROVIDER_PRIVATE_KEY", "NETWORK_URL", "ADDRESS_FILE", "AQUARIUS_URL",
                "OPERATOR_SERVICE_URL", "LOG_LEVEL", "UNIVERSAL_PRIVATE_KEY")


def tidegate_env(rpc_url: str, chain: BenchChain, data_dir: Path,
                 **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIDEGATE_") and k not in _FOREIGN_ENV}
    env.update({
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "NETWORK_URL": rpc_url,
        "ADDRESS_FILE": str(chain.address_file),
        "TIDEGATE_DATA_DIR": str(data_dir),
        "TIDEGATE_ALLOW_PRIVATE_URLS": "true",
        "TIDEGATE_ACCESS_LOG": "false",
        # wrk floods from one address, which the default limits refuse after a burst;
        # the limiter's own cost is measured by `python -m bench.rate_limit`.
        "TIDEGATE_RATE_LIMIT": "false",
        # Likewise initialize's file check holds one of the address's probe slots (4 by
        # default, a #16 defence); wrk's 16 and 256 connections would mostly get 429.
        "TIDEGATE_PROBES_PER_CLIENT": "100000",
        "LOG_LEVEL": "WARNING",
    })
    env.update(extra)
    return env


def tidegate_binary() -> str:
    beside = Path(sys.executable).parent / "tidegate"
    found = str(beside) if beside.exists() else shutil.which("tidegate")
    if not found:
        raise RuntimeError("the tidegate command is not installed (make setup)")
    return found


def start_tidegate(name: str, workers: int, env: dict[str, str],
                   port: int | None = None) -> Server:
    port = port or free_port()
    proc = Proc(name, [tidegate_binary(), "serve", "--host", "127.0.0.1", "--port", str(port),
                       "--workers", str(workers)], env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc, timeout=90)
    wait_settled(proc, workers)
    return Server(name, proc, url, workers)


def start_hello(workers: int, kind: str = "raw") -> Server:
    port = free_port()
    proc = Proc(f"{'hello' if kind == 'raw' else kind}-{workers}w",
                [sys.executable, "-m", "bench.hello_app", str(port), str(workers), kind],
                cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc, timeout=60)
    wait_settled(proc, workers)
    return Server(proc.name, proc, url, workers)


# --------------------------------------------------------------------------- profiling


class Profiler:
    """With ``--profile DIR``: py-spy records the serving processes during scenarios."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.binary = (shutil.which("py-spy") or
                       str(Path(sys.executable).parent / "py-spy")) if directory else None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            if not self.binary or not Path(self.binary).exists():
                raise RuntimeError("--profile needs py-spy (pip install py-spy)")

    @contextlib.contextmanager
    def record(self, name: str, server: Server) -> Iterator[None]:
        if self.directory is None or self.binary is None:
            yield
            return
        spies = []
        for index, pid in enumerate(server.pids()):
            out = self.directory / f"{name}.{index}.txt"
            spies.append(subprocess.Popen(
                [self.binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                 "--nonblocking", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.7)
        try:
            yield
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                try:
                    spy.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    spy.kill()


# --------------------------------------------------------------------------- scenarios


@dataclass
class Setup:
    workdir: Path
    files: Path
    origin_url: str
    origin_label: str
    chain: BenchChain
    chain_url: str
    data_dir: Path
    assets: dict[str, Any]
    wallets: dict[str, list[Wallet]]
    seconds: float


def make_files(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # nginx's workers run as an unprivileged user: let them read the files.
    for folder in (directory.parent, directory):
        folder.chmod(0o755)
    block = os.urandom(MIB)  # incompressible, so no layer can cheat by compressing
    (directory / "small.csv").write_bytes((b"id,value\n" + block)[:KIB])
    for name, size in (("big1g.bin", GIB), ("mid100m.bin", 100 * MIB)):
        with (directory / name).open("wb") as handle:
            for _ in range(size // MIB):
                handle.write(block)


def pick_origin(files: Path, workdir: Path, results: dict[str, Any]) -> tuple[Proc, str, str]:
    """Measure nginx and the aiohttp sendfile server on the 1 GiB file; keep the faster."""
    candidates: list[tuple[str, Proc, str]] = []
    if origin_mod.nginx_binary():
        try:
            proc, url = origin_mod.start_nginx(files, workdir)
            version = subprocess.run([origin_mod.nginx_binary() or "nginx", "-v"],
                                     capture_output=True, text=True, check=False).stderr.strip()
            candidates.append((version.replace("nginx version: ", "") + " (sendfile)", proc,
                               url))
        except RuntimeError as exc:
            log(f"nginx did not start: {exc}")
    proc, url = origin_mod.start_aiohttp(files)
    candidates.append(("aiohttp FileResponse (sendfile)", proc, url))
    speeds = {}
    for label, _proc, url in candidates:
        curl_get(url + "/big1g.bin")  # warm the page cache
        runs = [curl_get(url + "/big1g.bin").mb_per_s for _ in range(2)]
        speeds[label] = max(runs)
        log(f"origin {label}: 1 GiB at {speeds[label]:,.0f} MB/s")
    best = max(candidates, key=lambda c: speeds[c[0]])
    for label, proc, _url in candidates:
        if label != best[0]:
            proc.stop()
    results["origin_candidates"] = {k: round(v) for k, v in speeds.items()}
    return best[1], best[2], best[0]


def wrk_matrix(server: Server, paths: dict[str, str], setup: Setup, profiler: Profiler,
               results: dict[str, Any], key: str) -> None:
    """Each path at 1/16/256 connections (after a 1 s warm-up)."""
    for label, path in paths.items():
        url = server.url + path
        run_get(url, 16, 1, setup.workdir)  # warm-up
        wait_settled(server.proc, server.workers)  # let queued work drain first
        rows = []
        for connections in CONNECTIONS:
            with profiler.record(f"{key}-{label}-c{connections}", server) \
                    if connections == 256 else contextlib.nullcontext():
                result = run_get(url, connections, setup.seconds, setup.workdir)
            rows.append(result.as_dict())
            log(f"{server.name} {label:<11} c={connections:<3} {result.ok_rps:9,.0f} req/s  "
                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                f"errors {result.errors}")
        results.setdefault(key, {})[label] = rows


def signed_downloads(server: Server, setup: Setup, profiler: Profiler,
                     results: dict[str, Any], key: str) -> None:
    """Pre-signed 1 KiB downloads, one wallet per connection."""
    asset = setup.assets["small"]
    wallets = setup.wallets["signed"]
    warm = [[w.download_path(asset) for _ in range(300)] for w in wallets]
    run_url_lists(server.url, warm, 1, setup.workdir)
    wait_settled(server.proc, server.workers)
    per_connection = int(setup.seconds * 400) + 200  # room for ~6,000 req/s
    lists = [[w.download_path(asset) for _ in range(per_connection)] for w in wallets]
    with profiler.record(f"{key}-signed", server):
        result = run_url_lists(server.url, lists, setup.seconds, setup.workdir)
    exhausted = result.requests >= per_connection * len(wallets)
    log(f"{server.name} signed 1 KiB download c={len(wallets)}: {result.ok_rps:,.0f} req/s  "
        f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  errors {result.errors}"
        + ("  (URL lists exhausted!)" if exhausted else "") + f"  statuses {result.statuses}")
    results[key] = {**result.as_dict(), "exhausted": exhausted}
    if result.errors:
        log(f"{server.name} log tail (errors above):\n{server.proc.output(4000)}")


def single_latencies(server: Server, setup: Setup, results: dict[str, Any]) -> None:
    """One client: a download of a never-seen order, then warm repeats (ms)."""
    asset = setup.assets["small"]
    cold_wallet, = setup.wallets["latency"][:1]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        began = time.perf_counter()
        first = client.get(cold_wallet.download_path(asset))
        cold = (time.perf_counter() - began) * 1000
        warm = []
        for _ in range(50):
            began = time.perf_counter()
            response = client.get(cold_wallet.download_path(asset))
            warm.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"download failed: {response.status_code} {response.text}")
    if first.status_code != 200:
        raise RuntimeError(f"download failed: {first.status_code} {first.text}")
    results["latency_direct"] = {"order_cold_ms": round(cold, 2),
                                 "warm_p50_ms": round(statistics.median(warm), 2),
                                 "warm_min_ms": round(min(warm), 2)}
    log(f"{server.name} single client: cold order {cold:.1f} ms, warm p50 "
        f"{statistics.median(warm):.2f} ms")


def one_gib(server: Server, setup: Setup, profiler: Profiler, results: dict[str, Any]) -> None:
    asset = setup.assets["big"]
    wallet = setup.wallets["big"][0]
    direct, through = [], []
    pids = server.pids()
    reset_peak_rss(pids)
    base_rss = sum(rss_mib(pids))
    for attempt in range(3):
        d = curl_get(setup.origin_url + "/big1g.bin")
        with profiler.record("one-gib", server) if attempt == 0 else contextlib.nullcontext():
            t = curl_get(server.url + wallet.download_path(asset))
        if d.status != 200 or d.size != GIB or t.status != 200 or t.size != GIB:
            raise RuntimeError(f"1 GiB download failed: direct {d}, through Tidegate {t}")
        direct.append(d.mb_per_s)
        through.append(t.mb_per_s)
        log(f"1 GiB: direct {d.mb_per_s:,.0f} MB/s, through {server.name} {t.mb_per_s:,.0f} MB/s")
    peak = sum(peak_rss_mib(pids))
    results["one_gib"] = {"direct_mb_s": round(statistics.median(direct)),
                          "tidegate_mb_s": round(statistics.median(through)),
                          "ratio": statistics.median(through) / statistics.median(direct),
                          "runs": 3, "rss_before_mib": round(base_rss, 1),
                          "peak_rss_mib": round(peak, 1)}


def many_streams(server: Server, setup: Setup, profiler: Profiler,
                 results: dict[str, Any]) -> None:
    """200 concurrent 100 MiB downloads (one of them a slow reader) and a /nonce probe."""
    asset = setup.assets["mid"]
    wallets = setup.wallets["many"]
    probe_url = f"{server.url}/api/services/nonce?userAddress={wallets[0].address}"
    idle = LatencyProbe(probe_url)
    idle.start()
    time.sleep(1.5)
    idle_result = idle.stop()
    urls = [server.url + w.download_path(asset) for w in wallets[1:]]
    slow = SlowReader(server.url + wallets[0].download_path(asset))
    pids = server.pids()
    reset_peak_rss(pids)
    base_rss = sum(rss_mib(pids))
    probe = LatencyProbe(probe_url)
    probe.start()
    slow.start()
    with profiler.record("many-streams", server):
        outcome = curl_many(urls, 100 * MIB, timeout=240)
    probe_result = probe.stop()
    slow_bytes, slow_status = slow.received, slow.status
    slow.stop()
    peak = sum(peak_rss_mib(pids))
    results["many"] = {
        "streams": len(urls) + 1, "fast_completed": outcome.completed,
        "fast_failed": outcome.failed, "statuses": outcome.statuses,
        "seconds": round(outcome.seconds, 2), "total_mb_s": round(outcome.mb_per_s),
        "slow_reader_bytes": slow_bytes, "slow_reader_status": slow_status,
        "peak_rss_mib": round(peak, 1), "rss_before_mib": round(base_rss, 1),
        "nonce_probe": probe_result.as_dict(),
        "nonce_probe_idle": idle_result.as_dict(),
    }
    log(f"200 x 100 MiB: {outcome.completed}/{len(urls)} complete in {outcome.seconds:.1f} s, "
        f"{outcome.mb_per_s:,.0f} MB/s total; slow reader got {slow_bytes / MIB:.1f} MiB; "
        f"peak RSS {peak:.0f} MiB; /nonce p99 {probe_result.percentile(99):.1f} ms "
        f"(max {results['many']['nonce_probe']['max_ms']} ms, {probe_result.errors} errors)")


def rpc_counts(setup: Setup, results: dict[str, Any]) -> None:
    """RPC calls per download through a counting proxy: process cold, order cold, warm."""
    proxy_port = free_port()
    proxy = Proc("rpc-proxy", [sys.executable, "-m", "bench.rpc_proxy", setup.chain_url,
                               str(proxy_port)], cwd=REPO)
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    wait_http(proxy_url + "/_counts", proxy, timeout=30)
    # No indexer in this process: only the download's own calls reach the proxy.
    server = start_tidegate("tidegate-rpc-count", 1, tidegate_env(
        proxy_url, setup.chain, setup.data_dir, TIDEGATE_INDEXER="false"))
    asset = setup.assets["small"]
    first, second = setup.wallets["rpc"][:2]
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def measured(wallet: Wallet, repeats: int) -> dict[str, Any]:
                httpx.post(proxy_url + "/_reset")
                times = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    response = client.get(wallet.download_path(asset))
                    times.append((time.perf_counter() - began) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"download: {response.status_code} {response.text}")
                counts = httpx.get(proxy_url + "/_counts").json()
                return {"downloads": repeats,
                        "rpc_per_download": counts["requests"] / repeats,
                        "methods": counts["methods"],
                        "p50_ms": round(statistics.median(times), 2)}

            out["process_cold"] = measured(first, 1)
            out["order_cold"] = measured(second, 1)
            out["warm"] = measured(second, 50)
            time.sleep(1.1)  # past the once-a-second head-block cache
            out["warm_after_1s"] = measured(second, 1)
    finally:
        server.stop()
        proxy.stop()
    results["rpc"] = out
    for label, row in out.items():
        log(f"RPC per download, {label}: {row['rpc_per_download']:.2f} "
            f"{row['methods']}  p50 {row['p50_ms']} ms (through the counting proxy)")


# --------------------------------------------------------------------------- main


def prepare(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> tuple[Setup, int]:
    files = workdir / "files"
    log("writing the 1 KiB, 100 MiB and 1 GiB files")
    make_files(files)
    _origin_proc, origin_url, origin_label = pick_origin(files, workdir, results)
    log(f"origin: {origin_label} at {origin_url}")
    kind = args.chain
    if kind == "auto":
        kind = "anvil" if find_anvil() else "devchain"
    _chain_proc, chain_url, chain_label = start_chain(kind)
    log(f"chain: {chain_label} at {chain_url}; deploying the Ocean contracts")
    chain = deploy_chain(chain_url, chain_label, workdir)
    port = free_port()
    provider_url = f"http://127.0.0.1:{port}"
    assets = {
        "small": chain.publish("bench 1 KiB", origin_url + "/small.csv", provider_url),
        "big": chain.publish("bench 1 GiB", origin_url + "/big1g.bin", provider_url),
        "mid": chain.publish("bench 100 MiB", origin_url + "/mid100m.bin", provider_url),
    }
    wallets = {
        "signed": [Wallet(f"signed-{i}") for i in range(SIGNED_CONNECTIONS)],
        "latency": [Wallet(f"latency-{i}") for i in range(1)],
        "rpc": [Wallet(f"rpc-{i}") for i in range(2)],
        "big": [Wallet("big-0")],
        "many": [Wallet(f"many-{i}") for i in range(MANY_STREAMS)],
    }
    began = time.monotonic()
    chain.order_for(assets["small"], wallets["signed"] + wallets["latency"] + wallets["rpc"])
    chain.order_for(assets["big"], wallets["big"])
    chain.order_for(assets["mid"], wallets["many"])
    log(f"published 3 assets and sent {sum(len(w) for w in wallets.values())} orders "
        f"in {time.monotonic() - began:.1f} s")
    setup = Setup(workdir, files, origin_url, origin_label, chain, chain_url,
                  workdir / "tidegate-data", assets, wallets, args.seconds)
    results["chain"] = chain_label
    results["origin"] = origin_label
    return setup, port


def wait_indexed(server: Server, setup: Setup) -> None:
    deadline = time.monotonic() + 60
    pending = {a.did for a in setup.assets.values()}
    while pending and time.monotonic() < deadline:
        for did in list(pending):
            if httpx.get(f"{server.url}/api/aquarius/assets/ddo/{did}").status_code == 200:
                pending.discard(did)
        time.sleep(0.1)
    if pending:
        raise RuntimeError("Tidegate did not index the benchmark assets within 60 s")


def scenario(results: dict[str, Any], name: str, function: Any, *args: Any) -> None:
    """Run one scenario; a failure is recorded in the results, not fatal."""
    try:
        function(*args)
    except Exception as exc:  # reported in results.md, the other scenarios still run
        traceback.print_exc()
        results.setdefault("failures", {})[name] = f"{type(exc).__name__}: {exc}"[:300]
        log(f"scenario {name} FAILED: {exc}")


def baselines(setup: Setup, results: dict[str, Any], workers: int) -> None:
    for kind in ("raw", "starlette"):
        hello = start_hello(workers, kind)
        try:
            key = f"{'hello' if kind == 'raw' else kind}_{workers}w"
            wrk_matrix(hello, {"hello": "/"}, setup, Profiler(None), results, key)
        finally:
            hello.stop()


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds_per_run": args.seconds}
    profiler = Profiler(Path(args.profile).resolve() if args.profile else None)
    setup, port = prepare(args, workdir, results)
    small_did = setup.assets["small"].did
    someone = setup.wallets["signed"][0].address
    paths = {
        "root": "/",
        "nonce": f"/api/services/nonce?userAddress={someone}",
        "initialize": f"/api/services/initialize?documentId={small_did}&serviceId=0"
                      f"&consumerAddress={someone}",
    }
    env = tidegate_env(setup.chain_url, setup.chain, setup.data_dir,
                       **dict(item.split("=", 1) for item in args.env))
    if args.env:
        results["extra_env"] = list(args.env)

    only = set(args.only.split(",")) if args.only else set(GROUPS)
    unknown = only - set(GROUPS)
    if unknown:
        raise RuntimeError(f"unknown --only groups {sorted(unknown)}; known: {GROUPS}")
    large = "large" in only and not args.skip_large

    # 1 worker: the framework ceiling, then every scenario on one Tidegate process.
    if "baselines" in only:
        scenario(results, "baselines, 1 worker", baselines, setup, results, 1)
    server = start_tidegate("tidegate-1w", 1, env, port)  # failing to start: cannot run
    try:
        wait_indexed(server, setup)
        if "unsigned" in only:
            scenario(results, "unsigned routes, 1 worker", wrk_matrix, server, paths, setup,
                     profiler, results, "tidegate_1w")
        if "signed" in only:
            scenario(results, "signed downloads, 1 worker", signed_downloads, server, setup,
                     profiler, results, "signed_1w")
            scenario(results, "single-client latency", single_latencies, server, setup,
                     results)
        if large:
            scenario(results, "1 GiB download", one_gib, server, setup, profiler, results)
            scenario(results, "200 x 100 MiB", many_streams, server, setup, profiler, results)
    finally:
        server.stop()

    # 2 workers: scaling.
    if "baselines" in only:
        scenario(results, "baselines, 2 workers", baselines, setup, results, 2)
    if only & {"unsigned", "signed"}:
        server = start_tidegate("tidegate-2w", 2, env)
        try:
            if "unsigned" in only:
                scenario(results, "unsigned routes, 2 workers", wrk_matrix, server, paths,
                         setup, Profiler(None), results, "tidegate_2w")
            if "signed" in only:
                scenario(results, "signed downloads, 2 workers", signed_downloads, server,
                         setup, profiler, results, "signed_2w")
        finally:
            server.stop()

    if "rpc" in only:
        scenario(results, "RPC calls per download", rpc_counts, setup, results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--chain", choices=("auto", "anvil", "devchain"), default="auto",
                        help="auto: anvil when `make anvil-setup` installed it")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of each measured wrk run (default 3)")
    parser.add_argument("--skip-large", action="store_true",
                        help="skip the 1 GiB and 200 x 100 MiB scenarios")
    parser.add_argument("--only", metavar="GROUPS",
                        help=f"comma-separated subset of {','.join(GROUPS)} (for iterating; "
                             "the committed results come from a full run)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for Tidegate, e.g. "
                             "TIDEGATE_RELAY_READ_BUDGET=8388608 (repeatable)")
    parser.add_argument("--profile", metavar="DIR",
                        help="record py-spy profiles of the serving process into DIR")
    parser.add_argument("--output", default=str(REPO / "bench" / "results.md"),
                        help="where to write the results (default bench/results.md)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tidegate-bench-"))
    try:
        results = run(args, workdir)
    except Exception:
        traceback.print_exc()
        print("bench: could not run (see above)", file=sys.stderr)
        return 1
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["total_seconds"] = round(time.monotonic() - started)
    text = report.render(results)
    print(text)
    Path(args.output).write_text(text)
    log(f"wrote {args.output} ({results['total_seconds']} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
