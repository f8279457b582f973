"""Compute configuration: environments, runtimes and sandbox options from settings.

With no ``TIDEGATE_COMPUTE_ENVIRONMENTS``, every configured chain gets one free local
environment (:func:`default_environment`): id ``tidegate-local-free`` (with several
chains, ``tidegate-local-free-<chainId>`` so ids stay unique), 1 CPU, 1 GB RAM, 1 GB
disk, 2 jobs at once, 600 s per job, price 0, fee token = ``PROVIDER_FEE_TOKEN`` or
the chain's OCEAN (else the zero address), compute consumer = the chain's provider
address (the provider wallet is the compute consumer of local environments).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import httpx
from eth_utils import is_address, to_checksum_address

from tidegate.chain.clients import ChainConfig, Chains
from tidegate.compute.engines.local import LocalEngine
from tidegate.compute.engines.operator_service import OperatorServiceEngine
from tidegate.compute.environments import Environment
from tidegate.compute.runtimes import RuntimeRule, build_runtime_rules
from tidegate.compute.sandbox import SandboxOptions
from tidegate.errors import ConfigurationError
from tidegate.fees.quotes import fee_token
from tidegate.files.storages import StorageContext
from tidegate.settings import Settings
from tidegate.stores.base import Store

__all__ = ["DEFAULT_ENVIRONMENT_ID", "compute_dir", "compute_environments",
           "default_environment", "local_engine", "operator_engine", "runtime_rules",
           "sandbox_options"]

DEFAULT_ENVIRONMENT_ID: Final = "tidegate-local-free"
_SETTING: Final = "TIDEGATE_COMPUTE_ENVIRONMENTS"
_KEYS: Final = frozenset({"id", "chainId", "cpu", "cpuNumber", "ramGB", "diskGB", "maxJobs",
                          "maxJobDuration", "priceMin", "feeToken", "allowNetwork",
                          "description", "desc", "consumerAddress", "storageExpiry"})


def _chain_fee_token(settings: Settings, chain: ChainConfig) -> str:
    configured = settings.provider_fee_tokens.get(chain.chain_id) or settings.provider_fee_token
    return fee_token(chain, configured)


def default_environment(settings: Settings, chain: ChainConfig, *, suffix: bool) -> Environment:
    """The free local environment of ``chain`` (see the module docstring)."""
    env_id = f"{DEFAULT_ENVIRONMENT_ID}-{chain.chain_id}" if suffix else DEFAULT_ENVIRONMENT_ID
    return Environment(id=env_id, chain_id=chain.chain_id,
                       consumer_address=chain.provider_address,
                       fee_token=_chain_fee_token(settings, chain), price_min=Decimal(0),
                       cpu_number=1, ram_gb=1.0, disk_gb=1.0, max_jobs=2,
                       max_job_duration=600, description="Free local sandboxed compute")


def _number(entry: Mapping[str, Any], key: str, default: float, where: str, *,
            integer: bool = False, minimum: float = 0.0) -> Any:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum \
            or (integer and not float(value).is_integer()):
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"{where}.{key} must be {kind} >= {minimum:g}")
    return int(value) if integer else float(value)


def _address(entry: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not is_address(value):
        raise ConfigurationError(f"{where}.{key} must be an Ethereum address")
    return str(to_checksum_address(value))


def _environment(settings: Settings, chains: Chains, entry: Mapping[str, Any],
                 where: str) -> Environment:
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigurationError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    env_id, chain_id = entry.get("id"), entry.get("chainId")
    if not isinstance(env_id, str) or not env_id.strip():
        raise ConfigurationError(f"{where}.id must be a non-empty string")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int | str) \
            or not str(chain_id).isdigit() or int(chain_id) not in chains.by_id:
        raise ConfigurationError(f"{where}.chainId must be one of the configured chains")
    chain = chains.by_id[int(chain_id)]
    try:
        price = Decimal(str(entry.get("priceMin", 0)))
    except InvalidOperation:
        price = Decimal(-1)
    if isinstance(entry.get("priceMin"), bool) or not price.is_finite() or price < 0:
        raise ConfigurationError(f"{where}.priceMin must be a number >= 0")
    allow_network = entry.get("allowNetwork", False)
    description = entry.get("description", entry.get("desc", "Local sandboxed compute"))
    if not isinstance(allow_network, bool) or not isinstance(description, str):
        raise ConfigurationError(f"{where}: allowNetwork must be a boolean, "
                                 "description a string")
    return Environment(
        id=env_id, chain_id=chain.chain_id,
        consumer_address=_address(entry, "consumerAddress", chain.provider_address, where),
        fee_token=_address(entry, "feeToken", _chain_fee_token(settings, chain), where),
        price_min=price,
        cpu_number=_number(entry, "cpu", _number(entry, "cpuNumber", 1, where, integer=True,
                                                  minimum=1), where, integer=True, minimum=1),
        ram_gb=_number(entry, "ramGB", 1.0, where, minimum=0.016),
        disk_gb=_number(entry, "diskGB", 1.0, where, minimum=0.000001),
        max_jobs=_number(entry, "maxJobs", 2, where, integer=True, minimum=1),
        max_job_duration=_number(entry, "maxJobDuration", 600, where, integer=True,
                                 minimum=1),
        storage_expiry=_number(entry, "storageExpiry", 86400, where, integer=True),
        description=description, allow_network=allow_network)


def compute_environments(settings: Settings, chains: Chains) -> list[Environment]:
    """The local engine's environments (``TIDEGATE_COMPUTE_ENVIRONMENTS`` or defaults).

    Each entry: ``{"id", "chainId", "cpu"?, "ramGB"?, "diskGB"?, "maxJobs"?,
    "maxJobDuration"? (s), "priceMin"? (per minute, fee-token units), "feeToken"?,
    "consumerAddress"?, "allowNetwork"?, "description"?, "storageExpiry"?}``.
    Raises ConfigurationError naming the bad entry (ids must be unique).
    """
    if settings.compute_environments is None:
        ids = chains.ids
        return [default_environment(settings, chains.by_id[c], suffix=len(ids) > 1)
                for c in ids]
    envs = [_environment(settings, chains, entry, f"{_SETTING}[{i}]")
            for i, entry in enumerate(settings.compute_environments)]
    if len({env.id for env in envs}) != len(envs):
        raise ConfigurationError(f"{_SETTING}: environment ids must be unique")
    return envs


def runtime_rules(settings: Settings) -> tuple[RuntimeRule, ...]:
    """The runtime table (``TIDEGATE_COMPUTE_RUNTIMES`` or the defaults)."""
    return build_runtime_rules(settings.compute_runtimes)


def sandbox_options(settings: Settings) -> SandboxOptions:
    """Sandbox options from the ``TIDEGATE_COMPUTE_*`` settings."""
    return SandboxOptions(unsafe_no_sandbox=settings.compute_unsafe_no_sandbox,
                          sandbox_uid=settings.compute_sandbox_uid,
                          max_processes=max(1, settings.compute_max_processes),
                          tmp_bytes=max(1, settings.compute_tmp_mb) * 1024 * 1024)


def compute_dir(settings: Settings) -> Path:
    """Where the local engine keeps job files (``TIDEGATE_COMPUTE_DIR``)."""
    return settings.compute_dir or settings.data_dir / "compute"


def local_engine(settings: Settings, store: Store, storage: StorageContext,
                 chains: Chains) -> LocalEngine:
    """The local engine as configured (call :meth:`LocalEngine.open` at start-up)."""
    return LocalEngine(store, storage, compute_environments(settings, chains),
                       compute_dir(settings), runtime_rules(settings),
                       sandbox_options(settings))


def operator_engine(settings: Settings, http: httpx.AsyncClient,
                    chains: Chains) -> OperatorServiceEngine | None:
    """The operator-service engine when ``OPERATOR_SERVICE_URL`` is set, else None."""
    key = settings.chain_independent_key or next(iter(settings.provider_keys.values()), None)
    if settings.operator_service_url is None or key is None:
        return None
    tokens = {c: _chain_fee_token(settings, chains.by_id[c]) for c in chains.ids}
    return OperatorServiceEngine(http, settings.operator_service_url, key, chains.ids,
                                 fee_tokens=tokens, metadata_uri=settings.aquarius_url or "")
