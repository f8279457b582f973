"""Compute configuration: the engines, their environments, runtimes and sandbox options.

The composition root hands in plain values (:class:`ComputeOptions`, the operator-service
URL and key); the chains carry each chain's fee token and compute address.

With no ``TIDEGATE_COMPUTE_ENVIRONMENTS``, every configured chain gets one free local
environment (:func:`default_environment`): id ``tidegate-local-free`` (with several
chains, ``tidegate-local-free-<chainId>`` so ids stay unique), 1 CPU, 1 GB RAM, 1 GB
disk, 2 jobs at once, 600 s per job, price 0, fee token = the chain's fee token
(``PROVIDER_FEE_TOKEN`` or the chain's OCEAN, else the zero address), compute consumer =
the chain's compute address (the provider wallet is the compute consumer of local
environments).

Each environment names its engine (``"engine": "local"`` or ``"docker"``). Unset, it is
``docker`` when a Docker daemon is configured (``DOCKER_HOST``), else ``local``; the
default environments follow the same rule. With several Docker hosts
(``TIDEGATE_DOCKER_HOSTS``), ``"dockerHost"`` pins an environment to one of them (its URL
as configured); unset, its jobs go to any host with room.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import aiodocker
import httpx
from eth_utils import is_address, to_checksum_address

from tidegate.chain.clients import ChainConfig, Chains
from tidegate.compute.engines.container_spec import DockerOptions
from tidegate.compute.engines.docker import DockerEngine
from tidegate.compute.engines.docker_hosts import DockerHost, host_url
from tidegate.compute.engines.local import LocalEngine
from tidegate.compute.engines.operator_service import OperatorServiceEngine
from tidegate.compute.engines.routing import EngineRouter, MachineEngine
from tidegate.compute.environments import DEVICES, NVIDIA, Environment, Gpus
from tidegate.compute.runtimes import build_runtime_rules
from tidegate.compute.sandbox import SandboxOptions
from tidegate.errors import ConfigurationError
from tidegate.files.storages import StorageContext
from tidegate.stores.base import Store

__all__ = [
    "DEFAULT_ENVIRONMENT_ID",
    "ComputeOptions",
    "compute_environments",
    "default_environment",
    "local_engine",
    "machine_engine",
    "operator_engine",
]

DEFAULT_ENVIRONMENT_ID: Final = "tidegate-local-free"
_SETTING: Final = "TIDEGATE_COMPUTE_ENVIRONMENTS"
_KEYS: Final = frozenset({"id", "chainId", "cpu", "cpuNumber", "ramGB", "diskGB", "maxJobs",
                          "maxJobDuration", "priceMin", "feeToken", "allowNetwork",
                          "description", "desc", "consumerAddress", "storageExpiry",
                          "engine", "allowedImages", "gpuNumber", "gpuType", "gpuDriver",
                          "gpuDevices", "dockerHost", "freeJobsPerConsumer"})
_ENGINES: Final = ("local", "docker")


@dataclass(frozen=True)
class ComputeOptions:
    """The local engine's configuration (``TIDEGATE_COMPUTE_*``), as plain values."""

    environments: Sequence[Mapping[str, Any]] | None
    """``TIDEGATE_COMPUTE_ENVIRONMENTS`` entries; None: one default per chain."""
    runtimes: Sequence[Mapping[str, Any]] | None
    """``TIDEGATE_COMPUTE_RUNTIMES`` entries; None: the default table."""
    directory: Path
    """Where job inputs, outputs and logs live."""
    sandbox: SandboxOptions
    docker: DockerOptions | None = None
    """The Docker engine's options when a daemon is configured (``DOCKER_HOST``)."""
    min_free_bytes: int = 0
    """Local jobs are refused unless the compute directory's disk keeps this much free
    after their inputs and outputs (``TIDEGATE_COMPUTE_MIN_FREE_MB``; 0: not checked)."""

    @property
    def default_engine(self) -> str:
        return "docker" if self.docker is not None else "local"


def default_environment(chain: ChainConfig, *, suffix: bool,
                        engine: str = "local") -> Environment:
    """The free environment of ``chain`` on ``engine`` (see the module docstring)."""
    env_id = f"{DEFAULT_ENVIRONMENT_ID}-{chain.chain_id}" if suffix else DEFAULT_ENVIRONMENT_ID
    description = ("Free compute in the algorithm's container" if engine == "docker"
                   else "Free local sandboxed compute")
    return Environment(id=env_id, chain_id=chain.chain_id,
                       consumer_address=chain.compute_address,
                       fee_token=chain.fee_token, price_min=Decimal(0),
                       cpu_number=1, ram_gb=1.0, disk_gb=1.0, max_jobs=2,
                       max_job_duration=600, description=description, engine=engine)


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


def _environment(chains: Chains, entry: Mapping[str, Any], where: str,
                 default_engine: str) -> Environment:
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
    engine = entry.get("engine", default_engine)
    if engine not in _ENGINES:
        raise ConfigurationError(f"{where}.engine must be one of {', '.join(_ENGINES)}")
    if engine == "docker" and default_engine != "docker":
        raise ConfigurationError(f"{where}.engine is docker but no Docker daemon is "
                                 "configured (DOCKER_HOST)")
    allowed = entry.get("allowedImages", [])
    if not isinstance(allowed, list) or not all(isinstance(p, str) and p.strip()
                                                for p in allowed):
        raise ConfigurationError(f"{where}.allowedImages must be a list of image patterns")
    if allowed and engine != "docker":
        raise ConfigurationError(f"{where}.allowedImages needs engine docker")
    docker_host = entry.get("dockerHost", "")
    if not isinstance(docker_host, str) or (docker_host and engine != "docker"):
        raise ConfigurationError(f"{where}.dockerHost must be the URL of a configured "
                                 "Docker host (engine docker)")
    return Environment(
        gpus=_gpus(entry, where, engine),
        id=env_id, chain_id=chain.chain_id,
        consumer_address=_address(entry, "consumerAddress", chain.compute_address, where),
        fee_token=_address(entry, "feeToken", chain.fee_token, where),
        price_min=price,
        cpu_number=_number(entry, "cpu", _number(entry, "cpuNumber", 1, where, integer=True,
                                                  minimum=1), where, integer=True, minimum=1),
        ram_gb=_number(entry, "ramGB", 1.0, where, minimum=0.016),
        disk_gb=_number(entry, "diskGB", 1.0, where, minimum=0.000001),
        max_jobs=_number(entry, "maxJobs", 2, where, integer=True, minimum=1),
        max_job_duration=_number(entry, "maxJobDuration", 600, where, integer=True,
                                 minimum=1),
        storage_expiry=_number(entry, "storageExpiry", 86400, where, integer=True),
        free_jobs_per_consumer=_number(entry, "freeJobsPerConsumer", 0, where,
                                       integer=True),
        description=description, allow_network=allow_network, engine=engine,
        allowed_images=tuple(p.strip() for p in allowed),
        docker_host=host_url(docker_host) if docker_host else "")


_NVIDIA_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,127}")
_DEVICE_PATH: Final = re.compile(r"/dev/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def _gpus(entry: Mapping[str, Any], where: str, engine: str) -> Gpus | None:
    """``gpuNumber``, ``gpuType``, ``gpuDriver`` (``nvidia``, ``devices``), ``gpuDevices``."""
    keys = {"gpuNumber", "gpuType", "gpuDriver", "gpuDevices"} & set(entry)
    if not keys or (keys == {"gpuNumber"} and entry["gpuNumber"] == 0):
        return None
    if engine != "docker":
        raise ConfigurationError(f"{where}: GPUs ({', '.join(sorted(keys))}) need engine "
                                 "docker")
    driver = entry.get("gpuDriver", NVIDIA)
    if driver not in (NVIDIA, DEVICES):
        raise ConfigurationError(f"{where}.gpuDriver must be {NVIDIA} or {DEVICES}")
    devices = entry.get("gpuDevices", [])
    pattern = _NVIDIA_ID if driver == NVIDIA else _DEVICE_PATH
    if not isinstance(devices, list) or not all(
            isinstance(d, str) and pattern.fullmatch(d) and ".." not in d.split("/")
            for d in devices) or len(set(devices)) != len(devices):
        kind = ("NVIDIA device ids (indexes or GPU UUIDs)" if driver == NVIDIA
                else "device paths under /dev")
        raise ConfigurationError(f"{where}.gpuDevices must be a list of distinct {kind}")
    if driver == DEVICES and not devices:
        raise ConfigurationError(f"{where}.gpuDevices must name the device nodes "
                                 "(gpuDriver devices)")
    if "gpuNumber" not in entry and not devices:
        raise ConfigurationError(f"{where}: {', '.join(sorted(keys))} without gpuNumber or "
                                 "gpuDevices")
    default = len(devices) if driver == NVIDIA and devices else 1
    count = _number(entry, "gpuNumber", default, where, integer=True, minimum=1)
    if driver == NVIDIA and devices and count != len(devices):
        raise ConfigurationError(f"{where}.gpuNumber must be the number of gpuDevices")
    gpu_type = entry.get("gpuType", "")
    if not isinstance(gpu_type, str):
        raise ConfigurationError(f"{where}.gpuType must be a string")
    return Gpus(count=count, type=gpu_type, driver=driver, device_ids=tuple(devices))


def compute_environments(entries: Sequence[Mapping[str, Any]] | None,
                         chains: Chains, default_engine: str = "local") -> list[Environment]:
    """This machine's environments (``TIDEGATE_COMPUTE_ENVIRONMENTS`` or defaults).

    Each entry: ``{"id", "chainId", "cpu"?, "ramGB"?, "diskGB"?, "maxJobs"?,
    "maxJobDuration"? (s), "priceMin"? (per minute, fee-token units), "feeToken"?,
    "consumerAddress"?, "allowNetwork"?, "description"?, "storageExpiry"?, "engine"?,
    "allowedImages"? (Docker: glob patterns of image references), "gpuNumber"?,
    "gpuType"?, "gpuDriver"? (``nvidia``, ``devices``), "gpuDevices"? (Docker: the GPUs
    of each job), "dockerHost"? (Docker: the one host its jobs run on),
    "freeJobsPerConsumer"? (free compute of Ocean Node's protocol: unfinished free
    jobs per consumer, default ``maxJobs``)}``;
    ``engine`` defaults to ``default_engine`` (``docker`` needs it to be ``docker``,
    i.e. a configured daemon). Raises ConfigurationError naming the bad entry (ids must
    be unique).
    """
    if entries is None:
        ids = chains.ids
        return [default_environment(chains.by_id[c], suffix=len(ids) > 1,
                                    engine=default_engine) for c in ids]
    envs = [_environment(chains, entry, f"{_SETTING}[{i}]", default_engine)
            for i, entry in enumerate(entries)]
    if len({env.id for env in envs}) != len(envs):
        raise ConfigurationError(f"{_SETTING}: environment ids must be unique")
    return envs


def local_engine(options: ComputeOptions, store: Store, storage: StorageContext,
                 chains: Chains) -> LocalEngine:
    """The local engine with every configured environment (:meth:`LocalEngine.open` at
    start-up); :func:`machine_engine` when some environments may be Docker's."""
    return LocalEngine(store, storage, compute_environments(options.environments, chains),
                       options.directory, build_runtime_rules(options.runtimes),
                       options.sandbox, min_free_bytes=options.min_free_bytes)


def machine_engine(options: ComputeOptions, store: Store, storage: StorageContext,
                   chains: Chains,
                   docker: aiodocker.Docker | Sequence[DockerHost] | None) -> MachineEngine:
    """This machine's engines as configured: each environment on its ``engine``.

    ``docker`` is the client of ``DOCKER_HOST``, or the hosts of ``TIDEGATE_DOCKER_HOSTS``
    (each with its client), None when neither is set. One engine is
    returned as is; local and Docker environments together go behind an
    :class:`EngineRouter`. Call ``open()`` on the result at start-up.
    """
    envs = compute_environments(options.environments, chains, options.default_engine)
    engines: dict[str, MachineEngine] = {}
    docker_envs = [e for e in envs if e.engine == "docker"]
    if docker_envs:
        if docker is None or options.docker is None:
            raise ConfigurationError("Docker environments need DOCKER_HOST")
        urls = ({h.url for h in docker} if not isinstance(docker, aiodocker.Docker)
                else set())
        for env in docker_envs:
            if env.docker_host and env.docker_host not in urls:
                raise ConfigurationError(f"{_SETTING}: the dockerHost of {env.id} is not one "
                                         "of the Docker hosts (TIDEGATE_DOCKER_HOSTS)")
        engines["docker"] = DockerEngine(store, storage, docker_envs, options.directory,
                                         docker, options.docker)
    local_envs = [e for e in envs if e.engine == "local"]
    if local_envs or not engines:
        engines["local"] = LocalEngine(store, storage, local_envs, options.directory,
                                       build_runtime_rules(options.runtimes), options.sandbox,
                                       min_free_bytes=options.min_free_bytes)
    if len(engines) == 1:
        return next(iter(engines.values()))
    return EngineRouter(engines, {env.id: env.engine for env in envs})


def operator_engine(url: str | None, key: str, http: httpx.AsyncClient, chains: Chains,
                    store: Store, *, metadata_uri: str = "") -> OperatorServiceEngine | None:
    """The operator-service engine when ``url`` (``OPERATOR_SERVICE_URL``) is set, else None.

    ``key`` signs the requests: the chain-independent key (``Settings.chain_independent_key``).
    ``store`` keeps what Tidegate knows of its Ocean Node protocol jobs (``operator_jobs``).
    ``metadata_uri`` is sent as the jobs' ``output.metadataUri`` (``AQUARIUS_URL``).
    """
    if url is None:
        return None
    tokens = {c: chains.by_id[c].fee_token for c in chains.ids}
    return OperatorServiceEngine(http, url, key, chains.ids, fee_tokens=tokens,
                                 metadata_uri=metadata_uri, store=store)
