"""``tidegate dev`` (src/tidegate/dev/devmode.py): anvil by default, the in-process fallback,
the environment as ``serve`` reads it, and ``--data-dir`` keeping chain and index together.

The anvil tests start their own anvil (``make anvil-setup``) on free ports, whatever
``TIDEGATE_TEST_CHAIN`` says; they are skipped when anvil is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from tidegate.app import create_app
from tidegate.dev.anvil_node import find_anvil, free_port
from tidegate.dev.dev_state import MANIFEST_FILE, STATE_FILE, DevModeError
from tidegate.dev.devmode import (
    DEV_PROVIDER_KEY,
    DevEnvironment,
    dev_environ,
    prepare_demo,
    start_dev_environment,
    wait_until_resolved,
)
from tidegate.settings import Settings
from tidegate.stores.factory import build_store

needs_anvil = pytest.mark.skipif(find_anvil(os.environ.get("TIDEGATE_ANVIL")) is None,
                                 reason="anvil is not installed: run `make anvil-setup`")
USER_KEY = "0x" + "4c" * 32
QUIET = {"TIDEGATE_ACCESS_LOG": "false"}


def rpc(url: str, method: str, *params: Any) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                   "params": list(params)}, timeout=30).json()
    assert "error" not in answer, answer
    return answer["result"]


def mine(url: str, blocks: int) -> None:
    """``blocks`` times ``evm_mine``, in one JSON-RPC batch."""
    batch = [{"jsonrpc": "2.0", "id": i, "method": "evm_mine", "params": []}
             for i in range(blocks)]
    answers = httpx.post(url, json=batch, timeout=60).json()
    assert len(answers) == blocks and all("result" in a for a in answers)


async def aget(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def start(data_dir: Path | None, environ: Mapping[str, str] | None = None,
                **kwargs: Any) -> DevEnvironment:
    return await asyncio.to_thread(start_dev_environment, data_dir, free_port(),
                                   environ={**QUIET, **(environ or {})}, **kwargs)


@asynccontextmanager
async def provider(settings: Settings, port: int) -> AsyncIterator[str]:
    """Tidegate on ``port`` (a fixed one: the demo DDO names the provider URL)."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def test_dev_environ_takes_the_users_settings_and_fills_in_the_rest(tmp_path: Path) -> None:
    user = {"PROVIDER_PRIVATE_KEY": USER_KEY, "LOG_LEVEL": "debug",
            "IPFS_GATEWAY": "http://127.0.0.1:8080", "TIDEGATE_COMPUTE_MAX_PROCESSES": "7",
            "NETWORK_URL": "https://elsewhere.example", "ALLOW_NON_PUBLIC_IP": "false"}
    env = dev_environ(user, rpc_url="http://127.0.0.1:8545",
                      address_file=tmp_path / "a.json", data_dir=tmp_path)
    settings = Settings.from_env(env)
    assert settings.provider_keys.single.get_secret_value() == USER_KEY
    assert settings.log_level == "DEBUG"
    assert settings.ipfs_gateway == "http://127.0.0.1:8080"
    assert settings.arweave_gateway == "https://arweave.net/"  # the reference's Docker default
    assert settings.compute_max_processes == 7
    assert settings.allow_private_urls is False  # the user said so
    assert settings.network_url == "http://127.0.0.1:8545"  # always dev mode's own chain
    assert settings.address_file == tmp_path / "a.json" and settings.data_dir == tmp_path

    defaults = Settings.from_env(dev_environ({}, rpc_url="http://127.0.0.1:8545",
                                             address_file=tmp_path / "a.json",
                                             data_dir=tmp_path))
    assert defaults.provider_keys.single.get_secret_value() == DEV_PROVIDER_KEY
    provider_address = Account.from_key(DEV_PROVIDER_KEY).address
    assert provider_address == "0xe08A1dAe983BC701D05E492DB80e0144f8f4b909"  # barge's provider
    assert defaults.log_level == "WARNING"
    assert defaults.ipfs_gateway == "https://ipfs.io"
    assert defaults.allow_private_urls is True

    per_chain = Settings.from_env(dev_environ(
        {"PROVIDER_PRIVATE_KEY": json.dumps({"8996": USER_KEY})},
        rpc_url="http://127.0.0.1:8545", address_file=tmp_path / "a.json", data_dir=tmp_path))
    assert per_chain.network_urls.by_chain == {8996: "http://127.0.0.1:8545"}
    assert per_chain.provider_keys.get(8996).get_secret_value() == USER_KEY


@needs_anvil
async def test_dev_on_anvil_keeps_chain_and_index_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    port = free_port()
    env = await start(data, {"PROVIDER_PRIVATE_KEY": USER_KEY, "LOG_LEVEL": "ERROR"})
    try:
        assert env.backend == "anvil" and not env.reused_chain
        w3 = env.chain.w3
        assert w3.eth.chain_id == 8996
        assert rpc(env.rpc_url, "web3_clientVersion").startswith("anvil")
        assert env.chain.addresses is not None
        ocean = env.chain.addresses["Ocean"]
        assert len(w3.eth.get_code(Web3.to_checksum_address(ocean))) > 0
        assert json.loads(env.address_file.read_text())["development"]["Ocean"] == ocean
        # the environment is respected
        assert env.settings.provider_keys.single.get_secret_value() == USER_KEY
        assert env.settings.log_level == "ERROR"
        # node-side signing, as ocean.js's JsonRpcSigner uses it
        consumer = env.chain.accounts[2].address
        signature = rpc(env.rpc_url, "personal_sign", "0x" + b"hello".hex(), consumer)
        assert Account.recover_message(encode_defunct(b"hello"), signature=signature) == consumer
        async with provider(env.settings, port) as url:
            root = (await aget(url + "/")).json()
            assert root["providerAddresses"]["8996"] == Account.from_key(USER_KEY).address
            demo = await asyncio.to_thread(prepare_demo, env, url)
            assert not demo.reused
            assert await wait_until_resolved(url, demo.did)
        # block times follow the wall clock, even over a burst of 500 blocks
        mine(env.rpc_url, 500)
        assert abs(env.chain.w3.eth.get_block("latest")["timestamp"] - time.time()) <= 3
        head = env.chain.w3.eth.block_number
    finally:
        env.close()
    assert (data / STATE_FILE).exists() and (data / MANIFEST_FILE).exists()

    again = await start(data, {"PROVIDER_PRIVATE_KEY": USER_KEY})
    try:
        assert again.reused_chain
        assert again.chain.addresses == env.chain.addresses
        assert again.chain.w3.eth.block_number >= head
        async with provider(again.settings, port) as url:
            kept = await asyncio.to_thread(prepare_demo, again, url)
            assert kept.reused and kept.did == demo.did
            r = await aget(f"{url}/api/aquarius/assets/ddo/{demo.did}")
            assert r.status_code == 200 and r.json()["id"] == demo.did
    finally:
        again.close()

    # The chain state is lost: the index (which lists the demo) is refused ...
    (data / STATE_FILE).unlink()
    with pytest.raises(DevModeError, match=r"missing.*--fresh"):
        await start(data)
    # ... unless the user asks for a fresh start.
    fresh = await start(data, fresh=True)
    try:
        assert not fresh.reused_chain and fresh.chain.addresses is not None
        async with provider(fresh.settings, port) as url:
            r = await aget(f"{url}/api/aquarius/assets/ddo/{demo.did}")
            assert r.status_code == 404
    finally:
        fresh.close()


@needs_anvil
async def test_an_index_ahead_of_the_saved_chain_is_refused(tmp_path: Path) -> None:
    env = await start(tmp_path)
    env.close()

    async def pretend_indexed(block: int) -> None:
        store = build_store(env.settings.database_url, env.settings.sqlite_path)
        await store.open()
        try:
            await store.set_cursor("metadata:8996", block)
        finally:
            await store.close()

    await pretend_indexed(10**6)  # e.g. Tidegate was killed before anvil saved the state
    with pytest.raises(DevModeError, match="has seen block 1000000"):
        await start(tmp_path)

    # A deployment recorded by an older Tidegate, without a contract this one deploys.
    await pretend_indexed(1)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    del manifest["addresses"]["Dispenser"]
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(DevModeError, match=r"older Tidegate \(no Dispenser\)"):
        await start(tmp_path)


@needs_anvil
async def test_an_index_of_another_chain_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({"PROVIDER_PRIVATE_KEY": USER_KEY,
                                  "NETWORK_URL": "http://127.0.0.1:9",
                                  "TIDEGATE_DATA_DIR": str(tmp_path)})
    # a `tidegate serve` data dir, say
    store = build_store(settings.database_url, settings.sqlite_path)
    await store.open()
    await store.set_cursor("metadata:8996", 5)
    await store.close()
    with pytest.raises(DevModeError, match="index from another chain"):
        await start(tmp_path)


async def test_without_the_devchain_extra_the_in_process_chain_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tidegate.dev.devmode.devchain_installed", lambda: False)
    with pytest.raises(DevModeError, match=r"--chain embedded: .*'tidegate\[devchain\]'"):
        await start(None, chain="embedded")
    monkeypatch.setattr("tidegate.dev.devmode.find_anvil", lambda override: None)
    with pytest.raises(DevModeError, match=r"anvil not found .* eth-tester and py-evm"):
        await start(None)  # auto: no anvil to fall back from


async def test_the_in_process_fallback_signs_and_cannot_keep_a_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("tidegate.dev.devmode.find_anvil", lambda override: None)
    with pytest.raises(DevModeError, match="anvil not found"):
        await start(None, chain="anvil")
    env = await start(tmp_path)  # auto: falls back, and says so
    try:
        assert "anvil not found" in capsys.readouterr().err
        assert env.backend == "embedded"
        assert rpc(env.rpc_url, "eth_chainId") == hex(8996)
        accounts = rpc(env.rpc_url, "eth_accounts")
        assert Web3.to_checksum_address(accounts[2]) == env.chain.accounts[2].address
        signature = rpc(env.rpc_url, "personal_sign", "0x00ff", accounts[2])
        recovered = Account.recover_message(encode_defunct(b"\x00\xff"), signature=signature)
        assert recovered == env.chain.accounts[2].address
    finally:
        env.close()
    temporary = await start(None, chain="embedded")  # no --data-dir: nothing is kept
    assert temporary.backend == "embedded" and (temporary.data_dir / "address.json").exists()
    temporary.close()
    assert not temporary.data_dir.exists()
    # An index kept next to the in-process chain would outlive it: refused.
    store = build_store(env.settings.database_url, env.settings.sqlite_path)
    await store.open()
    await store.set_cursor("metadata:8996", 3)
    await store.close()
    with pytest.raises(DevModeError, match="cannot keep its state"):
        await start(tmp_path)


def test_cli_reports_a_bad_environment_and_a_refusal(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tidegate.cli import main

    runner = CliRunner()
    bad = runner.invoke(main, ["dev", "--port", "0", "--rpc-port", "0", "--chain", "embedded",
                               "--data-dir", str(tmp_path)],
                        env={"PROVIDER_PRIVATE_KEY": "0x1234"})
    assert bad.exit_code == 2
    assert "PROVIDER_PRIVATE_KEY must be a 32-byte hex private key" in bad.output
    assert "0x1234" not in bad.output  # never a secret's value

    settings = Settings.from_env({"PROVIDER_PRIVATE_KEY": USER_KEY,
                                  "NETWORK_URL": "http://127.0.0.1:9",
                                  "TIDEGATE_DATA_DIR": str(tmp_path)})

    async def foreign_index() -> None:
        store = build_store(settings.database_url, settings.sqlite_path)
        await store.open()
        await store.set_cursor("metadata:8996", 5)
        await store.close()

    asyncio.run(foreign_index())
    refused = runner.invoke(main, ["dev", "--port", "0", "--rpc-port", "0",
                                   "--chain", "embedded"],
                            env={"TIDEGATE_DATA_DIR": str(tmp_path)})
    assert refused.exit_code == 1
    assert "holds an index from another chain" in refused.output
    assert "--fresh" in refused.output


def test_cli_names_a_taken_port(tmp_path: Path) -> None:
    import socket

    from click.testing import CliRunner

    from tidegate.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for option in ("--port", "--rpc-port"):
            other = "--rpc-port" if option == "--port" else "--port"
            result = CliRunner().invoke(main, ["dev", option, port, other, "0",
                                               "--data-dir", str(tmp_path)])
            assert result.exit_code == 1, result.output
            assert f"{option} {port}: cannot listen there (Address already in use)" in \
                result.output
            assert f"choose another with {option}, or {option} 0" in result.output
            assert "Traceback" not in result.output


def test_find_anvil_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # --anvil / TIDEGATE_ANVIL, as given: a bad path is reported
    assert find_anvil("/opt/foundry/anvil") == Path("/opt/foundry/anvil")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert find_anvil(roots=[tmp_path]) is None
    modules = tmp_path / "tools" / "anvil" / "node_modules"
    wrapper = modules / ".bin" / "anvil"
    binary = modules / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    for path in (wrapper, binary):
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    assert find_anvil(roots=[tmp_path]) == binary  # the ELF binary before node's wrapper
    on_path = tmp_path / "bin" / "anvil"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_anvil(roots=[tmp_path]) == on_path


def test_ctrl_c_while_the_demo_is_published_stops_cleanly(tmp_path: Path) -> None:
    """SIGINT as soon as the provider answers, while the demo asset is being published:
    exit 0, no traceback (the demo's calls to the stopping server used to raise)."""
    import signal
    import subprocess
    import sys

    import tidegate

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tidegate", "dev", "--port", str(port), "--rpc-port", "0",
         "--chain", "embedded"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TIDEGATE_")},
             # This checkout's package, whatever the working directory.
             "PYTHONPATH": str(Path(tidegate.__file__).resolve().parents[1])})
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGINT)
        out = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, out
    assert "Traceback" not in out, out
