"""`tidegate publish` against the dev chain and a running Tidegate, all three pricings."""

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.server_helpers import serving
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tidegate.settings import Settings


@pytest.mark.parametrize("pricing", ["plain", "fixed_rate", "dispenser"])
async def test_publish_command(harness: ChainHarness, chain_settings: Callable[..., Settings],
                               tmp_path: Path, pricing: str) -> None:
    description = tmp_path / "asset.json"
    description.write_text(json.dumps({
        "name": f"CLI {pricing}", "description": "published by the CLI",
        "files": [{"type": "url", "url": harness.origin + "/data.csv"}],
        "pricing": pricing, "rate": "2.5", "services": ["access", "compute"],
    }))
    async with serving(chain_settings()) as url:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidegate", "publish", str(description),
            "--rpc", harness.rpc.url, "--provider-url", url,
            "--address-file", str(harness.address_file),
            env={**os.environ, "TIDEGATE_PUBLISHER_KEY": harness.chain.private_key(1)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        published = json.loads(out)
        assert harness.chain.private_key(1) not in out.decode() + err.decode()
        async with httpx.AsyncClient(base_url=url) as client:
            ddo = await wait_for_ddo(client, published["did"])
    assert ddo["nftAddress"] == published["nftAddress"]
    assert [s["type"] for s in ddo["services"]] == ["access", "compute"]
    assert ddo["nft"]["owner"] == harness.publisher.address
    assert ddo["event"]["tx"] == published["metadataTx"]


async def test_publish_command_reports_failures_clearly(harness: ChainHarness,
                                                        tmp_path: Path) -> None:
    description = tmp_path / "asset.json"
    description.write_text(json.dumps({"name": "x", "files": []}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidegate", "publish", str(description), "--rpc", harness.rpc.url,
        "--provider-url", "http://127.0.0.1:9", "--key", "0x" + "11" * 32,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "files must be a non-empty list" in err.decode()
