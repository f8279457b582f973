"""The consumer CLI (`tidegate order`, `download`, `compute`) against a served Tidegate.

Real chain (the session chain: eth-tester behind its JSON-RPC shim, or anvil), Ocean
contracts, assets published by the fixtures, Tidegate on a loopback socket; the CLI
runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.server_helpers import free_port, serving
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tidegate.dev.ocean_txs import ONE_TOKEN, contract
from tidegate.dev.publishing import PublishedAsset
from tidegate.settings import Settings

TX = re.compile(r"order tx\s+(0x[0-9a-f]{64})")


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Stack:
    harness: ChainHarness
    url: str
    client: httpx.AsyncClient

    @property
    def key(self) -> str:
        return self.harness.chain.private_key(2)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")}
        env.update({"TIDEGATE_CONSUMER_KEY": self.key, "TIDEGATE_RPC_URL": self.harness.rpc.url})
        env.update(extra)
        return env

    async def publish(self, **kwargs: object) -> PublishedAsset:
        asset = self.harness.publish(provider_url=self.url, **kwargs)
        await wait_for_ddo(self.client, asset.did)
        return asset

    async def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidegate", *args, env=env or self.env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        result = Result(proc.returncode or 0, out.decode(), err.decode())
        assert self.key not in result.out + result.err
        assert self.key.removeprefix("0x") not in result.out + result.err
        return result


@pytest.fixture
async def stack(harness: ChainHarness,
                chain_settings: Callable[..., Settings]) -> AsyncIterator[Stack]:
    async with serving(chain_settings()) as url, httpx.AsyncClient(base_url=url) as client:
        yield Stack(harness, url, client)


def order_tx(result: Result) -> str:
    match = TX.search(result.out)
    assert match, result.out + result.err
    return match.group(1)


async def test_order_then_download(stack: Stack, tmp_path: Path) -> None:
    asset = await stack.publish(files=[
        {"type": "url", "url": stack.harness.origin + "/data.csv"},
        {"type": "url", "url": stack.harness.origin + "/big.bin"}], pricing="fixed_rate",
        rate=2 * ONE_TOKEN)
    w3 = stack.harness.chain.w3
    ocean = contract(w3, "ERC20Template", stack.harness.addresses["Ocean"])
    before = ocean.functions.balanceOf(stack.harness.consumer.address).call()
    ordered = await stack.run("order", asset.did, "--provider-url", stack.url)
    assert ordered.code == 0, ordered.err
    tx = order_tx(ordered)
    print(ordered.out)
    # 2 OCEAN plus the exchange's community fee (0.1%).
    assert "bought 1 TDT for 2.002 OCEAN at the fixed-rate exchange" in ordered.out
    after = ocean.functions.balanceOf(stack.harness.consumer.address).call()
    assert before - after == 2_002 * ONE_TOKEN // 1000
    receipt = w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1

    out = tmp_path / "out"
    downloaded = await stack.run("download", asset.did, "--out", str(out),
                                 "--provider-url", stack.url)
    assert downloaded.code == 0, downloaded.err
    assert order_tx(downloaded) == tx  # the earlier order is reused
    assert (out / "data.csv").read_bytes() == ORIGIN_FILES["data.csv"]
    assert (out / "big.bin").read_bytes() == ORIGIN_FILES["big.bin"]
    assert "sha256 verified" in downloaded.out
    assert "reusing a still-valid order" in downloaded.out
    assert not list(out.glob("*.part"))
    # Nothing more was spent.
    assert ocean.functions.balanceOf(stack.harness.consumer.address).call() == after


async def test_download_orders_first_and_then_reuses(stack: Stack, tmp_path: Path) -> None:
    asset = await stack.publish(pricing="dispenser")
    first = await stack.run("download", asset.did, "--out", str(tmp_path / "a"),
                            "--provider-url", stack.url)
    assert first.code == 0, first.err
    assert "from the dispenser (free)" in first.out
    assert (tmp_path / "a" / "data.csv").read_bytes() == ORIGIN_FILES["data.csv"]
    second = await stack.run("download", asset.did, "--out", str(tmp_path / "b"),
                             "--provider-url", stack.url)
    assert second.code == 0, second.err
    assert order_tx(second) == order_tx(first)
    assert "a still-valid order was reused" in second.out
    assert (tmp_path / "b" / "data.csv").read_bytes() == ORIGIN_FILES["data.csv"]


async def test_order_spends_a_held_datatoken(stack: Stack) -> None:
    asset = await stack.publish()  # plain pricing: the publisher mints to the consumer
    stack.harness.give_datatokens(asset, ONE_TOKEN)
    dt = contract(stack.harness.chain.w3, "ERC20Template", asset.datatoken_address)
    result = await stack.run("order", asset.did, "--metadata-url", stack.url)
    assert result.code == 0, result.err
    assert "1 TDT you held" in result.out
    assert dt.functions.balanceOf(stack.harness.consumer.address).call() == 0
    # Nothing left to buy it with: a plain datatoken has no exchange or dispenser.
    other = await stack.publish(name="unpriced")
    result = await stack.run("order", other.did, "--metadata-url", stack.url)
    assert result.code == 1
    assert "holds no TDT" in result.err and "no active fixed-rate exchange" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


async def test_resume_of_a_partial_file(stack: Stack, tmp_path: Path) -> None:
    asset = await stack.publish(files=[{"type": "url", "url": stack.harness.origin + "/big.bin"}],
                                pricing="dispenser")
    body = ORIGIN_FILES["big.bin"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "big.bin.part").write_bytes(body[:300_000])
    result = await stack.run("download", asset.did, "--out", str(out),
                             "--provider-url", stack.url)
    assert result.code == 0, result.err
    assert "resumed at 300000 bytes" in result.out and "sha256 verified" in result.out
    assert (out / "big.bin").read_bytes() == body
    assert not (out / "big.bin.part").exists()

    # A .part that is not the start of the file: the checksum catches it, the part goes.
    (out / "big.bin").unlink()
    (out / "big.bin.part").write_bytes(b"x" * 1000)
    result = await stack.run("download", asset.did, "--out", str(out),
                             "--provider-url", stack.url)
    assert result.code == 1
    assert "is not the provider's" in result.err and "the file was removed" in result.err
    assert not (out / "big.bin.part").exists() and not (out / "big.bin").exists()
    # Run again: a clean download.
    result = await stack.run("download", asset.did, "--out", str(out),
                             "--provider-url", stack.url)
    assert result.code == 0, result.err
    assert (out / "big.bin").read_bytes() == body


def run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; (exit code, what it showed)."""
    import fcntl
    import pty
    import struct
    import subprocess
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "tidegate", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), b"".join(chunks).decode("utf-8", "replace")


async def test_progress_bar_in_a_terminal(stack: Stack, tmp_path: Path) -> None:
    asset = await stack.publish(files=[{"type": "url", "url": stack.harness.origin + "/big.bin"}],
                                pricing="dispenser")
    env = stack.env(TERM="xterm-256color", COLUMNS="120")
    code, shown = await asyncio.to_thread(
        run_in_pty, ["download", asset.did, "--out", str(tmp_path), "--provider-url",
                     stack.url], env)
    assert code == 0, shown
    assert (tmp_path / "big.bin").read_bytes() == ORIGIN_FILES["big.bin"]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "━" in plain  # the bar
    assert re.search(r"1\.0/1\.0 MB", plain), plain  # size: done / total
    assert re.search(r"\d+(\.\d+)? [kMG]B/s", plain), plain  # speed
    assert stack.key not in shown


async def test_unknown_did_and_unreachable_services(stack: Stack, tmp_path: Path) -> None:
    unknown = "did:op:" + "0" * 64
    result = await stack.run("order", unknown, "--provider-url", stack.url)
    assert result.code == 1
    assert result.err == (f"tidegate order: the metadata cache at {stack.url} knows no asset "
                          f"{unknown}\n")

    dead = f"http://127.0.0.1:{free_port()}"
    result = await stack.run("download", unknown, "--out", str(tmp_path), "--provider-url",
                             dead)
    assert result.code == 1
    assert result.err == (f"tidegate download: the metadata cache at {dead} did not answer "
                          f"(ConnectError)\n")

    asset = await stack.publish()
    result = await stack.run("order", asset.did, "--metadata-url", stack.url,
                             "--provider-url", dead)
    assert result.code == 1
    assert result.err == f"tidegate order: the provider at {dead} did not answer (ConnectError)\n"

    result = await stack.run("order", asset.did, "--provider-url", stack.url, "--rpc", dead)
    assert result.code == 1
    assert result.err == ("tidegate order: the chain RPC failed while reading the chain id "
                          "(ConnectionError)\n")

    result = await stack.run("order", "not-a-did", "--provider-url", stack.url)
    assert result.code == 2 and "is not an Ocean DID" in result.err


async def test_provider_refusal_is_reported_with_its_reason(stack: Stack) -> None:
    consumer = stack.harness.consumer.address
    asset = await stack.publish(credentials={"allow": [], "deny": [
        {"type": "address", "values": [consumer.lower()]}]})
    result = await stack.run("order", asset.did, "--provider-url", stack.url)
    assert result.code == 1
    assert result.err.startswith("tidegate order: the provider refused to quote the order "
                                 "(HTTP 400): "), result.err
    assert "CREDENTIAL_IN_DENY_LIST" in result.err and result.err.count("\n") == 1


def test_bad_options_are_one_line() -> None:
    from click.testing import CliRunner

    from tidegate.cli import main

    runner = CliRunner()
    did = "did:op:" + "0" * 64
    env = {"TIDEGATE_RPC_URL": "http://127.0.0.1:9", "TIDEGATE_CONSUMER_KEY": "0x1234"}
    result = runner.invoke(main, ["order", did, "--provider-url", "http://127.0.0.1:9"], env=env)
    assert (result.exit_code, result.stderr) == (
        2, "tidegate order: the consumer key is not a private key (64 hex digits)\n")
    assert "1234" not in result.output
    result = runner.invoke(main, ["order", did], env={**env, "TIDEGATE_CONSUMER_KEY": None})
    assert result.exit_code == 2 and "--key" in result.stderr
    env["TIDEGATE_CONSUMER_KEY"] = "0x" + "11" * 32
    result = runner.invoke(main, ["order", did], env=env)
    assert result.exit_code == 2 and "--metadata-url or --provider-url" in result.stderr
    assert "11" * 32 not in result.output
    result = runner.invoke(main, ["download", did, "--out", "x", "--provider-url", "ftp://x"],
                           env=env)
    assert result.exit_code == 2 and "must be an http:// or https:// URL" in result.stderr


def test_version_and_short_help() -> None:
    from click.testing import CliRunner

    from tidegate import __version__
    from tidegate.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert (result.exit_code, result.output) == (0, f"tidegate, version {__version__}\n")
    for command in ([], ["serve"], ["publish"], ["order"], ["download"], ["compute"]):
        result = runner.invoke(main, [*command, "-h"])
        assert result.exit_code == 0, (command, result.output)
        assert result.output.startswith("Usage:"), command
    for command, variables in {
        "order": ["TIDEGATE_CONSUMER_KEY", "TIDEGATE_RPC_URL", "TIDEGATE_PROVIDER_URL",
                  "TIDEGATE_METADATA_URL"],
        "download": ["TIDEGATE_CONSUMER_KEY", "TIDEGATE_RPC_URL"],
        "compute": ["TIDEGATE_CONSUMER_KEY", "TIDEGATE_RPC_URL"],
        "publish": ["TIDEGATE_PUBLISHER_KEY"],
        "serve": ["PROVIDER_PRIVATE_KEY", "NETWORK_URL"],
    }.items():
        shown = runner.invoke(main, [command, "-h"]).output
        for variable in variables:
            assert variable in shown, (command, variable)


PYTHON = {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11",
          "checksum": "sha256:" + "ab" * 32}


async def test_compute_job_end_to_end(stack: Stack, tmp_path: Path) -> None:
    dataset = await stack.publish(name="compute dataset", services=("compute",),
                                  pricing="dispenser", compute={
                                      "allowRawAlgorithm": False, "allowNetworkAccess": False,
                                      "publisherTrustedAlgorithmPublishers": [],
                                      "publisherTrustedAlgorithms": []})
    algorithm = await stack.publish(
        name="algorithm", type="algorithm", services=("access",), pricing="dispenser",
        files=[{"type": "url", "url": f"{stack.harness.origin}/count.py"}],
        algorithm={"language": "python", "version": "1", "container": PYTHON})
    out = tmp_path / "results"
    result = await stack.run("compute", dataset.did, "--algorithm", algorithm.did,
                             "--out", str(out), "--provider-url", stack.url)
    assert result.code == 0, result.out + result.err
    assert result.out.count("from the dispenser (free)") == 2, result.out
    assert "Started job" in result.out and "Job completed" in result.out
    saved = {p.name: p.read_bytes() for p in out.iterdir()}
    assert b"lines=3" in saved.values(), saved
    assert any(b"counted" in body for body in saved.values()), saved  # the algorithm's log
    assert "Running algorithm" in result.err or "Job completed" in result.err

    # Again: both orders are still valid; the job asks for a longer validity than their
    # fees were quoted for, so (as ocean.py) they are renewed with reuseOrder: no datatoken.
    again = await stack.run("compute", dataset.did, "--algorithm", algorithm.did,
                            "--out", str(tmp_path / "again"), "--provider-url", stack.url)
    assert again.code == 0, again.out + again.err
    assert again.out.count("renewed the provider fee of a still-valid order") == 2, again.out
    assert "from the dispenser" not in again.out
    assert (tmp_path / "again" / "result.txt").read_bytes() == b"lines=3"

    # A dataset given as the algorithm: refused before anything is spent.
    wrong = await stack.run("compute", dataset.did, "--algorithm", dataset.did,
                            "--out", str(out), "--provider-url", stack.url)
    assert wrong.code == 2 and "is not an algorithm" in wrong.err


class CuttingProxy:
    """Relays to the provider; cuts the first download (no Range) after ``budget`` bytes."""

    def __init__(self, upstream: str, budget: int) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.budget = budget
        self.cut = False
        self.ranges: list[str] = []

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        limit: list[int | None] = [None]

        async def requests() -> None:
            while data := await reader.read(65536):
                head = data.decode("latin-1").lower()
                if "/api/services/download" in head:
                    match = re.search(r"\r\nrange: *([^\r]+)", head)
                    if match:
                        self.ranges.append(match.group(1))
                    elif not self.cut:
                        self.cut = True
                        limit[0] = self.budget
                up_writer.write(data)
                await up_writer.drain()

        async def responses() -> None:
            while data := await up_reader.read(65536):
                if limit[0] is not None:
                    if len(data) >= limit[0]:
                        writer.write(data[: limit[0]])
                        await writer.drain()
                        writer.transport.abort()
                        return
                    limit[0] -= len(data)
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(requests()), asyncio.create_task(responses())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        writer.transport.abort()
        up_writer.close()


async def test_broken_connection_resumes_with_range(stack: Stack, tmp_path: Path) -> None:
    asset = await stack.publish(files=[{"type": "url", "url": stack.harness.origin + "/big.bin"}],
                                pricing="dispenser")
    proxy = CuttingProxy(stack.url, budget=200_000)
    async with proxy as url:
        result = await stack.run("download", asset.did, "--out", str(tmp_path),
                                 "--provider-url", url, "--metadata-url", stack.url)
    assert result.code == 0, result.err
    assert proxy.cut and len(proxy.ranges) == 1 and proxy.ranges[0].startswith("bytes=")
    assert int(proxy.ranges[0].removeprefix("bytes=").rstrip("-")) > 0
    assert (tmp_path / "big.bin").read_bytes() == ORIGIN_FILES["big.bin"]
    assert "sha256 verified" in result.out
