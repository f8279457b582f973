"""Start-up checks: open what ``tidegate serve`` needs, once, and explain any failure.

``tidegate serve`` runs :func:`check_startup` in the parent process before any worker
starts, and ``tidegate check`` runs it alone. A problem is reported as one line that
names the setting to change and the cause, never a traceback or a secret; a success
yields the facts an operator wants to see at start (the banner).

The checks are stricter than what a worker needs to run (a worker tolerates an RPC
that is down, answering 503 until it is back): a configuration that cannot be right
— an RPC serving another chain than the one it is configured for, a chain the address
file does not list — is refused here rather than served wrongly.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from aiodocker.exceptions import DockerError

from tidegate.app import chain_setup, compute_options, docker_client
from tidegate.chain.clients import Chains, discover_chains, rpc_chain_id
from tidegate.compute.sandbox import Sandbox
from tidegate.errors import ConfigurationError
from tidegate.settings import Settings
from tidegate.stores.factory import build_store
from tidegate.types import ZERO_ADDRESS


class StartupError(ConfigurationError):
    """What stops Tidegate from starting: ``problems`` are one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ChainReport:
    chain_id: int
    provider_address: str
    fee_token: str
    rpc: str
    """"ok", or why the RPC did not answer (a worker retries it)."""


@dataclass(frozen=True)
class StartupReport:
    """The facts of the banner."""

    chains: list[ChainReport]
    store: str
    data_dir: str
    metadata: str
    compute: str
    warnings: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, object]:
        """The banner as structured log fields (no secret: addresses, hosts and paths)."""
        return {"chains": [{"chain_id": c.chain_id, "provider_address": c.provider_address,
                            "fee_token": c.fee_token, "rpc": c.rpc} for c in self.chains],
                "store": self.store, "data_dir": self.data_dir, "metadata": self.metadata,
                "compute": self.compute}

    def lines(self, *, with_warnings: bool = True) -> list[str]:
        """Human-readable, one fact per line (no secret: addresses and paths only)."""
        out = [f"chain {c.chain_id}: provider {c.provider_address}, fee token {c.fee_token}, "
               f"RPC {c.rpc}" for c in self.chains]
        out += [f"store: {self.store}", f"data dir: {self.data_dir}",
                f"metadata: {self.metadata}", f"compute: {self.compute}"]
        return out + ([f"warning: {w}" for w in self.warnings] if with_warnings else [])


def describe_store(settings: Settings) -> str:
    """The store without its credentials: ``sqlite <path>`` or ``postgresql host:port/db``."""
    if settings.database_url is None:
        return f"sqlite {settings.sqlite_path}"
    parts = urlsplit(settings.database_url.get_secret_value())
    if parts.scheme.startswith("sqlite"):
        return f"sqlite {parts.path}"
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql {parts.hostname or 'localhost'}{port}{parts.path or ''}"


def _innermost(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _cause(exc: BaseException) -> str:
    """The innermost reason of a failure, without URLs or credentials."""
    exc = _innermost(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # A driver's message may repeat the DSN: keep it out.
    return "see the database server's log" if "://" in text else text


async def _check_store(settings: Settings, problems: list[str]) -> None:
    variable = "TIDEGATE_DATABASE_URL" if settings.database_url else "TIDEGATE_DATA_DIR"
    if settings.database_url is None and settings.data_dir.exists() \
            and not settings.data_dir.is_dir():
        problems.append(f"TIDEGATE_DATA_DIR {settings.data_dir} is not a directory")
        return
    store = build_store(settings.database_url, settings.sqlite_path)
    try:
        await asyncio.wait_for(store.open(), timeout=15)
    except TimeoutError:
        problems.append(f"{variable}: the database did not answer within 15 s")
        return
    except Exception as exc:  # reported, not raised: every problem is listed
        problems.append(f"{variable}: the store cannot be opened ({describe_store(settings)}):"
                        f" {_cause(exc)}")
        return
    await store.close()


async def _check_chains(settings: Settings, problems: list[str],
                        warnings: list[str]) -> list[ChainReport]:
    async with httpx.AsyncClient(timeout=settings.rpc_timeout) as http:
        try:
            chains = await discover_chains(chain_setup(settings), http)
        except ConfigurationError as exc:
            problems.append(str(exc))
            return []
        except Exception as exc:  # the single-URL form must answer eth_chainId
            problems.append("NETWORK_URL: the RPC did not answer eth_chainId "
                            f"({type(_innermost(exc)).__name__}); Tidegate asks it for the "
                            "chain id at start (or give NETWORK_URL as a JSON map "
                            '{"<chainId>": "<url>"})')
            return []
        try:
            return [await _check_chain(chains, cid, http, problems, warnings)
                    for cid in chains.ids]
        finally:
            await chains.close()


async def _check_chain(chains: Chains, chain_id: int, http: httpx.AsyncClient,
                       problems: list[str], warnings: list[str]) -> ChainReport:
    chain = chains.get(chain_id)
    if not chain.addresses:
        problems.append(f"ADDRESS_FILE has no contracts for chain {chain_id}: give an "
                        "ADDRESS_FILE that lists it (barge layout; `tidegate "
                        "deploy-contracts` writes one for a dev chain)")
    if chain.fee_token.lower() == ZERO_ADDRESS:
        problems.append(f"chain {chain_id}: no provider fee token (set PROVIDER_FEE_TOKEN or "
                        "an ADDRESS_FILE with the chain's Ocean token)")
    try:
        # Asked of the node itself: web3 answers the chain id it was built with.
        served = await asyncio.wait_for(rpc_chain_id(http, chain.rpc_url, 5), timeout=6)
    except Exception as exc:  # an RPC down now is tolerated: workers retry it
        rpc = f"not answering ({type(_innermost(exc)).__name__})"
        warnings.append(f"NETWORK_URL for chain {chain_id}: the RPC is {rpc}; requests that "
                        "need it answer 503 until it is back")
    else:
        rpc = "ok"
        if served != chain_id:
            problems.append(f"NETWORK_URL: the RPC configured for chain {chain_id} serves "
                            f"chain {served}")
    return ChainReport(chain_id, chain.provider_address, chain.fee_token, rpc)


async def _describe_docker(settings: Settings, problems: list[str]) -> str:
    try:
        client = docker_client(settings)
    except ConfigurationError as exc:
        problems.append(str(exc))
        return "docker, not checked"
    assert client is not None
    try:
        version = await asyncio.wait_for(client.version(), 5)
    except (DockerError, OSError, TimeoutError, ValueError) as exc:
        return (f"docker, unavailable (the daemon does not answer: {type(exc).__name__}): "
                "jobs are refused until it does")
    finally:
        await client.close()
    if settings.docker_hosts:  # the first host answers; the others are probed at run time
        return (f"docker ({len(settings.docker_hosts)} hosts in TIDEGATE_DOCKER_HOSTS, "
                f"the first daemon {version.get('Version', 'unknown')})")
    return f"docker (DOCKER_HOST, daemon {version.get('Version', 'unknown')})"


async def _describe_compute(settings: Settings, problems: list[str]) -> str:
    if settings.operator_service_url:
        return "operator-service (OPERATOR_SERVICE_URL)"
    if settings.docker_urls:
        docker = await _describe_docker(settings, problems)
        if not any(entry.get("engine") == "local"
                   for entry in settings.compute_environments or ()):
            return docker
        return f"{docker}; {await _describe_local(settings)}"
    return await _describe_local(settings)


async def _describe_local(settings: Settings) -> str:
    options = compute_options(settings)
    sandbox = Sandbox(options.sandbox, options.directory / "uids")
    scratch = options.directory / f"probe-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.to_thread(options.directory.mkdir, parents=True, exist_ok=True)
        reason = await sandbox.probe(scratch)
    except OSError as exc:
        return f"local, unavailable: {options.directory} cannot be used ({exc.strerror})"
    if sandbox.unsafe:
        return "local WITHOUT a sandbox (TIDEGATE_COMPUTE_UNSAFE_NO_SANDBOX)"
    if reason is not None:
        return f"local, unavailable (jobs are refused): {reason}"
    return "local, bubblewrap sandbox"


async def check_startup(settings: Settings) -> StartupReport:
    """Open the store and every chain, then close them; raise :class:`StartupError`
    listing every problem, else return the banner's facts."""
    problems: list[str] = []
    warnings: list[str] = []
    await _check_store(settings, problems)
    chains = await _check_chains(settings, problems, warnings)
    compute = await _describe_compute(settings, problems) if not problems else "not checked"
    if problems:
        raise StartupError(problems)
    metadata = "Aquarius (AQUARIUS_URL)" if settings.aquarius_url else (
        "built-in indexer" if settings.indexer_enabled else "built-in index, indexer off")
    return StartupReport(chains, describe_store(settings), str(settings.data_dir), metadata,
                         compute, warnings)
