"""Compute settings and environments: defaults per chain, the JSON form, its errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from tests.helpers import PROVIDER_ADDRESS, PROVIDER_KEY
from tidegate.app import chain_setup, compute_options
from tidegate.chain.clients import ChainConfig, Chains
from tidegate.chain.setup import ChainSetup, PerChain
from tidegate.compute.config import compute_environments, operator_engine
from tidegate.compute.runtimes import build_runtime_rules
from tidegate.errors import ConfigurationError
from tidegate.settings import Settings
from tidegate.stores.sqlite import SqliteStore

OCEAN = to_checksum_address("0x2473f4f7bf40ed9310838d1bb4b82d7e29e6ee3d")
OTHER_KEY = "0x" + "12" * 32


def _chain(chain_id: int, key: str = PROVIDER_KEY, ocean: str | None = OCEAN,
           setup: ChainSetup | None = None) -> ChainConfig:
    """A chain as discover_chains builds it (fee token by ``setup``'s rule)."""
    addresses = {"Ocean": ocean} if ocean else {}
    token = (setup or ChainSetup(rpc_urls=PerChain(), provider_keys=PerChain())).fee_token(
        chain_id, addresses)
    return ChainConfig(chain_id, "http://127.0.0.1:9", key, Account.from_key(key).address,
                       None, addresses, fee_token=token)  # type: ignore[arg-type]


CHAINS = Chains({8996: _chain(8996)})


def test_default_environment_per_chain(make_settings: Callable[..., Settings]) -> None:
    [env] = compute_environments(make_settings().compute_environments, CHAINS)
    assert env.to_json() == {
        "id": "tidegate-local-free", "chainId": 8996, "consumerAddress": PROVIDER_ADDRESS,
        "feeToken": OCEAN, "priceMin": 0.0, "free": True, "cpuNumber": 1, "cpuType": "local",
        "gpuNumber": 0, "gpuType": "", "ramGB": 1.0, "diskGB": 1.0, "maxJobs": 2,
        "currentJobs": 0, "maxJobDuration": 600, "storageExpiry": 86400,
        "desc": "Free local sandboxed compute", "lastSeen": 0}
    assert not env.allow_network
    fee = "0x" + "ab" * 20
    settings = make_settings(PROVIDER_FEE_TOKEN=json.dumps({"137": fee, "8996": OCEAN}),
                             PROVIDER_PRIVATE_KEY=json.dumps(
                                 {"8996": PROVIDER_KEY, "137": OTHER_KEY}),
                             NETWORK_URL=json.dumps({"8996": "http://a", "137": "http://b"}))
    setup = chain_setup(settings)
    two = Chains({8996: _chain(8996, setup=setup),
                  137: _chain(137, OTHER_KEY, ocean=None, setup=setup)})
    envs = compute_environments(settings.compute_environments, two)
    assert [(e.id, e.chain_id, e.fee_token) for e in envs] == [
        ("tidegate-local-free-137", 137, fee), ("tidegate-local-free-8996", 8996, OCEAN)]
    assert envs[0].consumer_address == Account.from_key(OTHER_KEY).address
    no_ocean = Chains({8996: _chain(8996, ocean=None)})
    assert compute_environments(None, no_ocean)[0].fee_token == "0x" + "00" * 20


def test_configured_environments(make_settings: Callable[..., Settings]) -> None:
    entries = [
        {"id": "big", "chainId": 8996, "cpu": 4, "ramGB": 8, "diskGB": 20.5, "maxJobs": 3,
         "maxJobDuration": 3600, "priceMin": 0.25, "allowNetwork": True,
         "description": "Paid, with network", "feeToken": "0x" + "cd" * 20},
        {"id": "small", "chainId": "8996"},
    ]
    settings = make_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=json.dumps(entries))
    big, small = compute_environments(settings.compute_environments, CHAINS)
    assert (big.cpu_number, big.ram_gb, big.disk_gb, big.max_jobs, big.max_job_duration) == (
        4, 8.0, 20.5, 3, 3600)
    assert big.price_min == Decimal("0.25") and not big.free and big.allow_network
    assert big.fee_token == to_checksum_address("0x" + "cd" * 20)
    assert big.description == "Paid, with network"
    assert small.free and small.ram_gb == 1.0 and small.max_jobs == 2
    assert small.consumer_address == PROVIDER_ADDRESS and small.fee_token == OCEAN


@pytest.mark.parametrize(("entries", "message"), [
    ([{"id": "a", "chainId": 1}], r"\[0\].chainId must be one of the configured chains"),
    ([{"chainId": 8996}], r"\[0\].id must be a non-empty string"),
    ([{"id": "a", "chainId": 8996, "ram": 1}], "unknown keys: ram"),
    ([{"id": "a", "chainId": 8996, "maxJobs": 0}], "maxJobs must be an integer >= 1"),
    ([{"id": "a", "chainId": 8996, "cpu": 1.5}], "cpu must be an integer"),
    ([{"id": "a", "chainId": 8996, "ramGB": "1"}], "ramGB must be a number"),
    ([{"id": "a", "chainId": 8996, "priceMin": -1}], "priceMin must be a number >= 0"),
    ([{"id": "a", "chainId": 8996, "priceMin": "free"}], "priceMin must be a number >= 0"),
    ([{"id": "a", "chainId": 8996, "feeToken": "0x12"}], "feeToken must be an Ethereum"),
    ([{"id": "a", "chainId": 8996, "allowNetwork": "yes"}], "allowNetwork must be a boolean"),
    ([{"id": "a", "chainId": 8996}, {"id": "a", "chainId": 8996}], "ids must be unique"),
])
def test_environment_errors(make_settings: Callable[..., Settings], entries: list[Any],
                            message: str) -> None:
    settings = make_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=json.dumps(entries))
    with pytest.raises(ConfigurationError, match=message):
        compute_environments(settings.compute_environments, CHAINS)


@pytest.mark.parametrize("name", ["TIDEGATE_COMPUTE_ENVIRONMENTS", "TIDEGATE_COMPUTE_RUNTIMES"])
@pytest.mark.parametrize("value", ["{", '{"id": 1}', "[1, 2]"])
def test_settings_refuse_malformed_json(make_settings: Callable[..., Settings], name: str,
                                        value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name} must be a JSON list of objects"):
        make_settings(**{name: value})


def test_compute_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    defaults = make_settings()
    assert (defaults.compute_unsafe_no_sandbox, defaults.compute_sandbox_uid,
            defaults.compute_max_processes, defaults.compute_tmp_mb) == (False, 61000, 64, 64)
    assert compute_options(defaults).directory == tmp_path / "compute"
    options = compute_options(defaults).sandbox
    assert not options.unsafe_no_sandbox and options.tmp_bytes == 64 * 1024 * 1024
    assert (options.max_output_files, options.cgroups, options.cgroup_parent,
            options.seccomp) == (256, True, None, True)
    custom = make_settings(TIDEGATE_COMPUTE_UNSAFE_NO_SANDBOX="true",
                           TIDEGATE_COMPUTE_DIR=str(tmp_path / "jobs"),
                           TIDEGATE_COMPUTE_SANDBOX_UID="70000",
                           TIDEGATE_COMPUTE_MAX_PROCESSES="16", TIDEGATE_COMPUTE_TMP_MB="8",
                           TIDEGATE_COMPUTE_MAX_OUTPUT_FILES="10", TIDEGATE_COMPUTE_CGROUPS="",
                           TIDEGATE_COMPUTE_CGROUP_PARENT="/tidegate.slice",
                           TIDEGATE_COMPUTE_SECCOMP="false",
                           TIDEGATE_COMPUTE_RUNTIMES=json.dumps(
                               [{"image": "python", "runtime": "python"}]))
    options = compute_options(custom).sandbox
    assert options.unsafe_no_sandbox and options.sandbox_uid == 70000
    assert options.max_processes == 16 and options.tmp_bytes == 8 * 1024 * 1024
    assert (options.max_output_files, options.cgroups, options.cgroup_parent,
            options.seccomp) == (10, False, "/tidegate.slice", False)
    assert compute_options(custom).directory == tmp_path / "jobs"
    assert [r.image for r in build_runtime_rules(compute_options(custom).runtimes)] == [
        "python"]
    with pytest.raises(ConfigurationError, match="TIDEGATE_COMPUTE_MAX_PROCESSES"):
        make_settings(TIDEGATE_COMPUTE_MAX_PROCESSES="-3")


async def test_operator_engine_only_with_a_url(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    async with httpx.AsyncClient() as http:
        assert operator_engine(None, PROVIDER_KEY, http, CHAINS, store) is None
        engine = operator_engine("http://op:8050", PROVIDER_KEY, http, CHAINS, store)
        assert engine is not None and engine.address == PROVIDER_ADDRESS
