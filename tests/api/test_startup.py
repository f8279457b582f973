"""`tidegate serve` / `tidegate check` at start: each problem named, no traceback, no
secret; exit status 2 for a bad setting and for a resource that cannot be used."""

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.chain_fixtures import ChainHarness
from tests.conftest import offline_address_file
from tests.helpers import PROVIDER_ADDRESS, PROVIDER_KEY

SECRET_PASSWORD = "pg-sekrit-7f3a"


async def tidegate(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI in a subprocess without blocking this event loop (the in-process
    chain's RPC server runs on it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidegate", *args,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return int(proc.returncode or 0), out.decode()


def offline(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {"PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY}),
           "NETWORK_URL": json.dumps({"8996": "http://127.0.0.1:9"}),
           "ADDRESS_FILE": str(offline_address_file(tmp_path)),
           "TIDEGATE_DATA_DIR": str(tmp_path / "data"),
           "IPFS_GATEWAY": "", "ARWEAVE_GATEWAY": ""}
    env.update(overrides)
    return env


def assert_clean(output: str) -> None:
    assert "Traceback" not in output, output
    for secret in (PROVIDER_KEY, PROVIDER_KEY[2:], SECRET_PASSWORD):
        assert secret not in output


@pytest.mark.parametrize(("name", "overrides", "status", "expected"), [
    ("address file missing", {"ADDRESS_FILE": "/nonexistent/address.json"}, 2,
     "ADDRESS_FILE cannot be read"),
    ("address file not JSON", {"ADDRESS_FILE": "NOTJSON"}, 2, "ADDRESS_FILE cannot be read"),
    ("data dir under /proc", {"TIDEGATE_DATA_DIR": "/proc/tidegate"}, 2, "TIDEGATE_DATA_DIR"),
    ("data dir is a file", {"TIDEGATE_DATA_DIR": "/etc/hostname"}, 2,
     "TIDEGATE_DATA_DIR /etc/hostname is not a directory"),
    ("database missing", {"TIDEGATE_DATABASE_URL":
                          f"postgresql://postgres:{SECRET_PASSWORD}@127.0.0.1:5432/no_such_db"},
     2, 'TIDEGATE_DATABASE_URL: the store cannot be opened (postgresql 127.0.0.1:5432/no_such_db)'
        ': database "no_such_db" does not exist'),
    ("single RPC down", {"NETWORK_URL": "http://127.0.0.1:9",
                         "PROVIDER_PRIVATE_KEY": PROVIDER_KEY}, 2,
     "NETWORK_URL: the RPC did not answer eth_chainId"),
    ("chain not in address file", {"NETWORK_URL": json.dumps({"5": "http://127.0.0.1:9"}),
                                   "PROVIDER_PRIVATE_KEY": json.dumps({"5": PROVIDER_KEY}),
                                   "ADDRESS_FILE": "OFFLINE"}, 2,
     "ADDRESS_FILE has no contracts for chain 5"),
    ("log level", {"LOG_LEVEL": "LOUD"}, 2,
     "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("malformed key", {"PROVIDER_PRIVATE_KEY": json.dumps({"8996": "0x1234"})}, 2,
     "PROVIDER_PRIVATE_KEY"),
])
async def test_start_up_problems_are_named(tmp_path: Path, name: str,
                                           overrides: dict[str, str], status: int,
                                           expected: str) -> None:
    if overrides.get("ADDRESS_FILE") == "NOTJSON":
        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        overrides = {**overrides, "ADDRESS_FILE": str(bad)}
    if overrides.get("ADDRESS_FILE") == "OFFLINE":
        overrides = {**overrides, "ADDRESS_FILE": str(offline_address_file(tmp_path))}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    for command in (["check"], ["serve", "--host", "127.0.0.1", "--port", port]):
        code, output = await tidegate(*command, env=offline(tmp_path, **overrides))
        assert code == status, (name, command, output)
        assert expected in output, (name, command, output)
        assert_clean(output)
        if status == 2:
            assert "is required" not in output, output  # no false second line


async def test_bad_options_and_a_taken_port(tmp_path: Path) -> None:
    for option in (["--port", "99999"], ["--workers", "0"]):
        code, output = await tidegate("serve", *option, env=offline(tmp_path))
        assert code == 2 and "Invalid value" in output and "Traceback" not in output, output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = await tidegate("serve", "--host", "127.0.0.1", "--port", str(port),
                                      env=offline(tmp_path))
    assert code == 2, output
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in output
    assert_clean(output)


async def test_check_on_a_real_chain(harness: ChainHarness, tmp_path: Path) -> None:
    env = {"PROVIDER_PRIVATE_KEY": PROVIDER_KEY, "NETWORK_URL": harness.rpc.url,
           "ADDRESS_FILE": str(harness.address_file), "TIDEGATE_DATA_DIR": "relative-data",
           "IPFS_GATEWAY": "", "ARWEAVE_GATEWAY": ""}
    code, output = await tidegate("check", env=env)
    assert code == 0, output
    ocean = harness.chain.addresses["Ocean"]
    assert f"chain 8996: provider {PROVIDER_ADDRESS}, fee token {ocean}, RPC ok" in output
    # A relative data directory is made absolute (the compute sandbox binds by path).
    data_line = next(line for line in output.splitlines() if "data dir:" in line)
    assert data_line.split("data dir: ")[1].startswith("/"), output
    assert "compute: " in output and "store: sqlite /" in output
    assert_clean(output)


async def test_an_rpc_serving_another_chain_is_refused(harness: ChainHarness,
                                                       tmp_path: Path) -> None:
    # NETWORK_URL says chain 1 but the node is chain 8996: it must not be served as
    # chain 1 (with mainnet's OCEAN as fee token).
    env = {"PROVIDER_PRIVATE_KEY": json.dumps({"1": PROVIDER_KEY}),
           "NETWORK_URL": json.dumps({"1": harness.rpc.url}),
           "TIDEGATE_DATA_DIR": str(tmp_path), "IPFS_GATEWAY": "", "ARWEAVE_GATEWAY": ""}
    code, output = await tidegate("check", env=env)
    assert code == 2, output
    assert "NETWORK_URL: the RPC configured for chain 1 serves chain 8996" in output
    assert harness.rpc.url not in output
    assert_clean(output)
