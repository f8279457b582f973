"""``python -m bench.node_protocol``: Ocean Node's protocol against the classic one.

The same ``tidegate serve`` process answers both generations; this measures, in the
same run and with the same wrk harness as ``bench.run`` (``bench/wrk.py``, its helpers
for the chain, the origin and the server), the requests each generation sends for the
two hot paths:

- ``GET /api/services/nonce``: ocean.py sends it bare; ocean.js 8 (``getNonce``) adds
  ``Content-Type: application/json``. 16 and 256 connections.
- the signed 1 KiB download: the classic URL signs ``did + nonce``; ocean.js 8's
  (``getDownloadUrl``) signs ``address + nonce + "download"`` with ethers' ``toBeArray``
  digest. 16 connections, one pre-signed URL list per wallet (``run_url_lists``), each
  generation with its own 16 ordered wallets so nonces never interleave.

Rounds alternate the order of the two generations (classic first, then node first) so
drift on a shared machine falls on both; the figure is the median over rounds of
successful answers per second and, the figure judged (target: within 10%), the median
of the per-round ratios node / classic.
Writes ``bench/results-node.md``. Needs wrk and a chain (anvil, else the in-process one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import coincurve
import httpx
from eth_utils import keccak

from bench import origin as origin_mod
from bench.chain import Wallet, deploy_chain, find_anvil, start_chain
from bench.procs import free_port, stop_all, wait_settled
from bench.run import (
    KIB,
    REPO,
    SIGNED_CONNECTIONS,
    Server,
    log,
    start_tidegate,
    tidegate_env,
)
from bench.wrk import WrkResult, run_get, run_url_lists
from tidegate.dev.publishing import PublishedAsset

NONCE_CONNECTIONS = (16, 256)
JSON_HEADER = "Content-Type: application/json"


def node_download_path(wallet: Wallet, asset: PublishedAsset) -> str:
    """ocean.js 8's ``getDownloadUrl``: ``address + nonce + "download"``, the digest read
    as a number by ``toBeArray`` (leading zero bytes dropped) and signed with EIP-191."""
    wallet.nonce += 1
    nonce = str(wallet.nonce)
    digest = keccak(text=wallet.address + nonce + "download").lstrip(b"\0")
    # EIP-191 over the digest's bytes, signed as Wallet.sign does (coincurve: the URL
    # lists hold tens of thousands of signatures).
    prefixed = keccak(b"\x19Ethereum Signed Message:\n" + str(len(digest)).encode() + digest)
    raw = coincurve.PrivateKey(wallet.key).sign_recoverable(prefixed, hasher=None)
    return "/api/services/download?" + urlencode({
        "fileIndex": "0", "documentId": asset.did, "transferTxId": wallet.orders[asset.did],
        "serviceId": "0", "consumerAddress": wallet.address, "nonce": nonce,
        "signature": "0x" + raw[:64].hex() + f"{raw[64] + 27:02x}"})


def _downloads(server: Server, asset: PublishedAsset, wallets: list[Wallet], node: bool,
               seconds: float, workdir: Path) -> WrkResult:
    make = (lambda w: node_download_path(w, asset)) if node else (
        lambda w: w.download_path(asset))
    per_connection = int(seconds * 400) + 200  # room for ~6,000 req/s
    lists = [[make(w) for _ in range(per_connection)] for w in wallets]
    result = run_url_lists(server.url, lists, seconds, workdir)
    if result.requests >= per_connection * len(wallets):
        log("URL lists exhausted: the figure is a lower bound")
    return result


def measure(server: Server, asset: PublishedAsset, wallets: dict[str, list[Wallet]],
            rounds: int, seconds: float, workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every round: both generations of each scenario, in alternating order."""
    someone = wallets["classic"][0].address
    nonce_url = f"{server.url}/api/services/nonce?userAddress={someone}"
    out: dict[str, list[dict[str, Any]]] = {}

    def record(key: str, result: WrkResult) -> None:
        out.setdefault(key, []).append(result.as_dict())
        log(f"{key:<22} {result.ok_rps:9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}")

    # Warm both paths (first order checks, caches) before anything is measured.
    run_get(nonce_url, 16, 1, workdir)
    for node in (False, True):
        _downloads(server, asset, wallets["node" if node else "classic"], node, 1, workdir)
    wait_settled(server.proc, server.workers)
    for index in range(rounds):
        order = (False, True) if index % 2 == 0 else (True, False)
        for connections in NONCE_CONNECTIONS:
            for node in order:
                headers = (JSON_HEADER,) if node else ()
                record(f"nonce_{'node' if node else 'classic'}_c{connections}",
                       run_get(nonce_url, connections, seconds, workdir, headers=headers))
        for node in order:
            record(f"download_{'node' if node else 'classic'}",
                   _downloads(server, asset, wallets["node" if node else "classic"], node,
                              seconds, workdir))
            wait_settled(server.proc, server.workers)
    return out


def summary(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per scenario: the median of each generation's rounds, and the median of the
    per-round ratios (each round's two runs are back to back, so a load change between
    rounds, frequent on a shared machine, cancels out in that figure)."""
    rows = []
    for scenario in [*(f"nonce_{{}}_c{c}" for c in NONCE_CONNECTIONS), "download_{}"]:
        classic = [r["ok_rps"] for r in runs.get(scenario.format("classic"), [])]
        node = [r["ok_rps"] for r in runs.get(scenario.format("node"), [])]
        if not classic or not node:
            continue
        errors = sum(r["errors"] for k in ("classic", "node")
                     for r in runs[scenario.format(k)])
        c, n = statistics.median(classic), statistics.median(node)
        per_round = [b / a for a, b in zip(classic, node, strict=False) if a]
        rows.append({"scenario": scenario.replace("_{}", ""), "classic": c, "node": n,
                     "ratio": n / c if c else 0.0,
                     "round_ratios": per_round,
                     "ratio_of_rounds": statistics.median(per_round) if per_round else 0.0,
                     "errors": errors, "rounds": len(classic)})
    return rows


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Ocean Node's protocol vs the classic one, same process (`python -m "
        "bench.node_protocol`)", "",
        f"{meta['date']}, {meta['chain']}, 1 worker, wrk {meta['seconds']:g} s x "
        f"{meta['rounds']} rounds (generations in alternating order); "
        f"{os.cpu_count()} cores shared with other processes (1-minute load average "
        f"{meta['load_before']:.2f} before, {meta['load_after']:.2f} after).", "",
        "| scenario | classic req/s (median) | Ocean Node req/s (median) | ratio of medians "
        "| per-round ratios | median per-round ratio | within 10% | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        ratio = row["ratio_of_rounds"]
        lines.append(
            f"| {row['scenario']} | {row['classic']:,.0f} | {row['node']:,.0f} | "
            f"{row['ratio']:.3f} | {', '.join(f'{r:.2f}' for r in row['round_ratios'])} | "
            f"{ratio:.3f} | {'yes' if abs(ratio - 1) <= 0.10 else 'no'} | {row['errors']} |")
    lines += ["", "nonce: the same GET, ocean.js 8 adding `Content-Type: application/json`; "
              "download: 1 KiB, 16 connections, 16 wallets per generation (classic signs "
              "`did + nonce`, ocean.js 8 `address + nonce + \"download\"`)."]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, workdir: Path) -> str:
    files = workdir / "files"
    files.mkdir(parents=True)
    (files / "small.csv").write_bytes((b"id,value\n" + os.urandom(KIB))[:KIB])
    _origin, origin_url = origin_mod.start_aiohttp(files)
    kind = args.chain if args.chain != "auto" else ("anvil" if find_anvil() else "devchain")
    _chain_proc, chain_url, chain_label = start_chain(kind)
    chain = deploy_chain(chain_url, chain_label, workdir)
    port = free_port()
    asset = chain.publish("bench node 1 KiB", origin_url + "/small.csv",
                          f"http://127.0.0.1:{port}")
    wallets = {kind: [Wallet(f"node-bench-{kind}-{i}") for i in range(SIGNED_CONNECTIONS)]
               for kind in ("classic", "node")}
    chain.order_for(asset, wallets["classic"] + wallets["node"])
    log(f"chain {chain_label}: published and ordered for {2 * SIGNED_CONNECTIONS} wallets")
    load_before = os.getloadavg()[0]
    server = start_tidegate("tidegate-node-bench", 1,
                            tidegate_env(chain_url, chain, workdir / "data"), port)
    try:
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.url}/api/aquarius/assets/ddo/{asset.did}").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark asset was not indexed within 60 s")
            time.sleep(0.1)
        root = httpx.get(server.url + "/").json()
        # Which code serves (PYTHONPATH may point at a worktree): the root says.
        log(f"serving Tidegate {root.get('version')}, nodePublicKey "
            f"{'present' if 'nodePublicKey' in root else 'absent'}")
        runs = measure(server, asset, wallets, args.rounds, args.seconds, workdir)
    finally:
        server.stop()
    rows = summary(runs)
    return render(rows, {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         "chain": chain_label, "seconds": args.seconds, "rounds": args.rounds,
                         "load_before": load_before, "load_after": os.getloadavg()[0]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_protocol", description=__doc__)
    parser.add_argument("--chain", choices=("auto", "anvil", "devchain"), default="auto")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of each measured wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results-node.md"))
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tidegate-node-bench-"))
    try:
        text = run(args, workdir)
    except Exception:
        traceback.print_exc()
        print("bench.node_protocol: could not run (see above)", file=sys.stderr)
        return 1
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    print(text)
    Path(args.output).write_text(text)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
