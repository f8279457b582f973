"""`tidegate publish` against the dev chain and a running Tidegate, all three pricings."""

import asyncio
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from tests.api.server_helpers import free_port, serving
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.local_http import LocalServer, QuietHandler
from tidegate.dev.ocean_txs import ONE_TOKEN, contract
from tidegate.settings import Settings

FIXED_RATE_EXCHANGE_DATATOKEN = 1  # getExchange(id): (owner, datatoken, ...)


async def run_publish(*args: str, key: str | None = None) -> tuple[int, str, str]:
    """``tidegate publish ARGS`` in a subprocess: (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "TIDEGATE_PUBLISHER_KEY"}
    if key is not None:
        env["TIDEGATE_PUBLISHER_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidegate", "publish", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def describe(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "asset.json"
    path.write_text(json.dumps({"name": "CLI asset", "files": [
        {"type": "url", "url": "https://data.example/x.csv"}], **fields}))
    return path


def assert_readable(text: str) -> None:
    """No Python bytes literal (raw addresses), no traceback."""
    assert "b'" not in text and 'b"' not in text and "\\x" not in text, text
    assert "Traceback" not in text, text


@pytest.mark.parametrize(("pricing", "extra"), [
    ("plain", {}), ("fixed_rate", {"rate": "2.5"}), ("dispenser", {})])
async def test_publish_command(harness: ChainHarness, chain_settings: Callable[..., Settings],
                               tmp_path: Path, pricing: str, extra: dict[str, str]) -> None:
    description = describe(tmp_path, name=f"CLI {pricing}", description="published by the CLI",
                            files=[{"type": "url", "url": harness.origin + "/data.csv"}],
                            pricing=pricing, services=["access", "compute"], **extra)
    w3 = harness.chain.w3
    async with serving(chain_settings()) as url:
        code, out, err = await run_publish(
            str(description), "--rpc", harness.rpc.url, "--provider-url", url,
            "--address-file", str(harness.address_file), "--mint", "3", "--json",
            key=harness.chain.private_key(1))
        assert code == 0, err
        published = json.loads(out)
        assert harness.chain.private_key(1) not in out + err
        async with httpx.AsyncClient(base_url=url) as client:
            ddo = await wait_for_ddo(client, published["did"])
    assert ddo["nftAddress"] == published["nftAddress"]
    assert [s["type"] for s in ddo["services"]] == ["access", "compute"]
    assert ddo["nft"]["owner"] == harness.publisher.address
    assert ddo["event"]["tx"] == published["metadataTx"]
    assert published["chainId"] == harness.chain.chain_id
    assert published["pricing"] == pricing
    # The NFT and the datatoken were created by the transaction printed.
    created = w3.eth.get_transaction_receipt(published["createTx"])
    assert created["to"] == harness.addresses["ERC721Factory"]
    assert created["status"] == 1
    datatoken = contract(w3, "ERC20TemplateEnterprise", published["datatokenAddress"])
    # --mint 3: three datatokens went to the publisher, for every pricing.
    assert datatoken.functions.balanceOf(harness.publisher.address).call() == 3 * ONE_TOKEN
    assert published["minted"] == "3"
    assert w3.eth.get_transaction_receipt(published["mintTx"])["status"] == 1
    if pricing == "fixed_rate":
        exchange_id = bytes.fromhex(published["exchangeId"].removeprefix("0x"))
        fre = contract(w3, "FixedRateExchange", published["exchangeAddress"])
        assert published["exchangeAddress"] == harness.addresses["FixedPrice"]
        exchange = fre.functions.getExchange(exchange_id).call()
        assert exchange[FIXED_RATE_EXCHANGE_DATATOKEN] == published["datatokenAddress"]
        assert fre.functions.calcBaseInGivenOutDT(exchange_id, ONE_TOKEN, 0).call()[0] \
            >= 25 * ONE_TOKEN // 10
    else:
        assert published["exchangeId"] is None and published["exchangeAddress"] is None
    if pricing == "dispenser":
        assert published["dispenserAddress"] == harness.addresses["Dispenser"]
        dispenser = contract(w3, "Dispenser", published["dispenserAddress"])
        status = dispenser.functions.status(published["datatokenAddress"]).call()
        assert status[0] is True  # active
    else:
        assert published["dispenserAddress"] is None


async def test_publish_prints_every_id_as_labelled_lines(
        harness: ChainHarness, chain_settings: Callable[..., Settings], tmp_path: Path) -> None:
    description = describe(tmp_path, pricing="fixed_rate", rate=1,
                           files=[{"type": "url", "url": harness.origin + "/data.csv"}])
    async with serving(chain_settings()) as url:
        code, out, err = await run_publish(
            str(description), "--rpc", harness.rpc.url, "--provider-url", url,
            "--address-file", str(harness.address_file), key=harness.chain.private_key(1))
    assert code == 0, err
    lines = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1)
                 for line in out.splitlines()[1:])
    assert out.splitlines()[0] == (f"Published on chain {harness.chain.chain_id} "
                                   f"(fixed_rate pricing):")
    assert lines["DID"].startswith("did:op:")
    for label in ("data NFT", "datatoken"):
        assert Web3.is_checksum_address(lines[label])
    assert lines["exchange id"].startswith("0x") and len(lines["exchange id"]) == 66
    for label in ("create tx", "metadata tx"):
        assert lines[label].startswith("0x") and len(lines[label]) == 66
    assert "minted" not in lines  # no --mint
    assert url + "/api/aquarius/assets/ddo/" + lines["DID"] in lines["resolve it"]


# --- strict input: nothing is sent ------------------------------------------------------------


async def test_unknown_keys_are_refused_naming_them_and_the_allowed_keys(tmp_path: Path) -> None:
    description = describe(tmp_path, prcing="fixed_rate", price="2")
    code, _, err = await run_publish(str(description), "--rpc", "http://127.0.0.1:9",
                                     "--provider-url", "http://127.0.0.1:9",
                                     key="0x" + "11" * 32)
    assert code == 2
    assert "unknown keys 'prcing', 'price'" in err
    assert "(allowed: name, files, description, author, license, type, tags, pricing, rate," \
           in err
    assert_readable(err)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"pricing": "fixed_rate"}, "rate is required with pricing fixed_rate"),
    ({"pricing": "fixed_rate", "rate": "0"}, "rate must be a positive number"),
    ({"pricing": "fixed_rate", "rate": "1e-19"}, "rate has more than 18 decimals"),
    ({"pricing": "fixed_rate", "rate": True}, "rate must be a positive number"),
    ({"pricing": "dispenser", "rate": "2"}, "rate applies only to pricing fixed_rate"),
    ({"pricing": "auction"}, 'pricing must be "plain", "fixed_rate" or "dispenser"'),
    ({"type": "model"}, 'type must be "dataset" or "algorithm"'),
    ({"services": ["access", "access"]}, 'services must list "access" and/or "compute"'),
    ({"timeout": "1d"}, "timeout must be an integer"),
    ({"tags": "weather"}, "tags must be a list of strings"),
    ({"files": []}, "files must be a non-empty list of file objects"),
    ({"algorithm": {"language": "python"}}, 'algorithm applies only to type "algorithm"'),
])
async def test_invalid_descriptions_are_refused(tmp_path: Path, fields: dict[str, Any],
                                                problem: str) -> None:
    code, out, err = await run_publish(str(describe(tmp_path, **fields)),
                                       "--rpc", "http://127.0.0.1:9",
                                       "--provider-url", "http://127.0.0.1:9",
                                       key="0x" + "11" * 32)
    assert code == 2, err
    assert problem in err
    assert out == ""
    assert_readable(err)


async def test_help_states_the_keys_and_their_defaults() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidegate", "publish", "-h", stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    assert "--mint N" in out and "--json" in out
    for expected in ('(default: "plain")', "(required with fixed_rate)", "(default: 86400)",
                     '(default: ["access"])', "any other key is refused"):
        assert expected in " ".join(out.split()), expected


# --- errors name the step and what to check ----------------------------------------------------


class _Status500(QuietHandler):
    def do_GET(self) -> None:
        body = b'{"error": "database down", "code": "store_unavailable"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def failing_provider() -> Iterator[str]:
    with LocalServer(_Status500).running() as server:
        yield server.url


async def test_provider_that_does_not_answer(harness: ChainHarness, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    code, _, err = await run_publish(
        str(describe(tmp_path)), "--rpc", harness.rpc.url,
        "--provider-url", f"http://127.0.0.1:{port}/some/path?apikey=s3cret",
        "--address-file", str(harness.address_file), key=harness.chain.private_key(1))
    assert code == 1
    assert f"the provider at http://127.0.0.1:{port} could not be reached (ConnectError)" in err
    assert "did not answer with an address" not in err
    assert "s3cret" not in err and "/some/path" not in err
    assert_readable(err)


async def test_provider_answering_an_error_status(harness: ChainHarness, tmp_path: Path,
                                                  failing_provider: str) -> None:
    code, _, err = await run_publish(
        str(describe(tmp_path)), "--rpc", harness.rpc.url, "--provider-url", failing_provider,
        "--address-file", str(harness.address_file), key=harness.chain.private_key(1))
    assert code == 1
    assert (f"the provider at {failing_provider} answered GET / with HTTP 500: database down"
            in err)
    assert_readable(err)


class _MainnetOnly(QuietHandler):
    """A provider root document that serves chain 1 only."""

    def do_GET(self) -> None:
        body = json.dumps({"providerAddresses": {"1": "0x" + "ab" * 20}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def test_provider_of_another_chain(harness: ChainHarness, tmp_path: Path) -> None:
    with LocalServer(_MainnetOnly).running() as provider:
        code, _, err = await run_publish(
            str(describe(tmp_path)), "--rpc", harness.rpc.url, "--provider-url", provider.url,
            "--address-file", str(harness.address_file), key=harness.chain.private_key(1))
    assert code == 1
    assert (f"the provider at {provider.url} does not serve chain {harness.chain.chain_id} "
            f"(its chains: 1)") in err
    assert_readable(err)


async def test_rpc_that_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    code, _, err = await run_publish(
        str(describe(tmp_path)), "--rpc", f"http://127.0.0.1:{port}/v3/PROJECTKEY",
        "--provider-url", "http://127.0.0.1:9", key="0x" + "11" * 32)
    assert code == 1
    assert f"the RPC at http://127.0.0.1:{port} could not be reached" in err
    assert "PROJECTKEY" not in err
    assert_readable(err)


async def test_publisher_without_gas(harness: ChainHarness, tmp_path: Path,
                                     chain_settings: Callable[..., Settings]) -> None:
    key = "0x" + "42" * 32  # not one of the funded mnemonic accounts
    address = harness.chain.w3.eth.account.from_key(key).address
    async with serving(chain_settings()) as url:
        code, _, err = await run_publish(
            str(describe(tmp_path)), "--rpc", harness.rpc.url, "--provider-url", url,
            "--address-file", str(harness.address_file), key=key)
    assert code == 1
    assert (f"the publisher {address} has no native coin on chain "
            f"{harness.chain.chain_id} to pay for gas") in err
    assert key not in err
    assert_readable(err)


async def test_failing_transaction_is_named_readably(
        harness: ChainHarness, tmp_path: Path,
        chain_settings: Callable[..., Settings]) -> None:
    """An address file whose factory is not a factory (the OCEAN token): the revert is
    reported with the function's name, addresses as 0x hex."""
    broken = tmp_path / "address.json"
    layout = json.loads(harness.address_file.read_text())
    for network in layout.values():
        network["ERC721Factory"] = network["Ocean"]
    broken.write_text(json.dumps(layout))
    async with serving(chain_settings()) as url:
        code, _, err = await run_publish(
            str(describe(tmp_path)), "--rpc", harness.rpc.url, "--provider-url", url,
            "--address-file", str(broken), key=harness.chain.private_key(1))
    assert code == 1
    assert "tidegate publish: a transaction failed: createNftWithErc20" in err
    assert_readable(err)
