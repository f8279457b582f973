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

from tests.api.server_helpers import serving
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tidegate.assets.publishing import PublishedAsset
from tidegate.chain.ocean_txs import ONE_TOKEN, contract
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
    assert "reused" in downloaded.out
    assert (out / "data.csv").read_bytes() == ORIGIN_FILES["data.csv"]
    assert (out / "big.bin").read_bytes() == ORIGIN_FILES["big.bin"]
    assert "sha256 verified" in downloaded.out
    assert not list(out.glob("*.part"))
    # Nothing more was spent.
    assert ocean.functions.balanceOf(stack.harness.consumer.address).call() == after
