"""Composition root: ``create_app(settings)`` builds every client once.

Only this module constructs clients (HTTP, store, chains) and hands them down; no
work happens at import time. The helpers below turn :class:`Settings` into the plain
values each module takes (no module below this one imports Settings to configure
itself).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import replace
from urllib.parse import urlsplit

import aiodocker
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from tidegate.api.context import Services
from tidegate.api.cors import cors_middleware
from tidegate.api.endpoints import (
    access,
    aquarius,
    aquarius_chains,
    auth_tokens,
    compute,
    decryption,
    encryption,
    files,
    nonce,
    operations,
    root,
)
from tidegate.api.errors import EXCEPTION_HANDLERS
from tidegate.api.fastpath import HotRoutes, TidegateApp
from tidegate.api.middleware import Metrics, ObservabilityMiddleware
from tidegate.api.node import node_endpoints
from tidegate.api.ratelimit import RateGate
from tidegate.api.routes import Endpoint, starlette_routes
from tidegate.api.uvicorn_protocol import InboundLimits
from tidegate.assets.indexer import ChainIndexer, IndexerOptions, run_indexers
from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import AquariusResolver, IndexedResolver, Resolver
from tidegate.assets.search_index import SearchIndex
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.tokens import AuthTokens
from tidegate.chain.clients import Chains, discover_chains
from tidegate.chain.erc1271 import approves_any
from tidegate.chain.escrow import ESCROW_KEY
from tidegate.chain.setup import ChainSetup
from tidegate.commands.compute.settle import PaidJobSettler
from tidegate.compute.config import ComputeOptions, machine_engine, operator_engine
from tidegate.compute.engines.base import ComputeEngine
from tidegate.compute.engines.container_spec import DockerOptions
from tidegate.compute.engines.docker_hosts import DockerHost
from tidegate.compute.sandbox import SandboxOptions
from tidegate.errors import ConfigurationError
from tidegate.fees.compute_payments import EscrowComputePayments
from tidegate.fees.escrow_payments import build_escrow_payments
from tidegate.files.objects import StorageContext
from tidegate.files.read_budget import ReadBudget
from tidegate.files.safe_fetch import FetchPolicy, PinnedAsyncClient, SafeFetcher
from tidegate.logs import configure_logging
from tidegate.ratelimit.backends import shared_state
from tidegate.ratelimit.clients import ClientKeys
from tidegate.ratelimit.slots import ConcurrencySlots
from tidegate.settings import Settings
from tidegate.stores.base import Store
from tidegate.stores.factory import build_store

CLAIM_RETRY_INTERVAL = 60.0
"""Seconds between the claim queue's passes (retries due claims, cancels expired locks)."""
SETTLE_INTERVAL = 10.0
"""Seconds between sweeps that settle ended paid compute jobs (``PaidJobSettler``)."""


def all_endpoints() -> list[Endpoint]:
    """Every endpoint Tidegate serves, in the order they appear in docs."""
    return [
        *root.ENDPOINTS,
        *nonce.ENDPOINTS,
        *encryption.ENDPOINTS,
        *decryption.ENDPOINTS,
        *access.ENDPOINTS,
        *files.ENDPOINTS,
        *compute.ENDPOINTS,
        *auth_tokens.ENDPOINTS,
        # Ocean Node's own routes after the classic ones: in GET /'s serviceEndpoints
        # the classic `fileinfo` comes first (ocean.js matches names case-insensitively).
        *node_endpoints(),
        *aquarius.ENDPOINTS,
        *aquarius_chains.ENDPOINTS,
        *operations.ENDPOINTS,
    ]


def chain_setup(settings: Settings) -> ChainSetup:
    """The chains as configured (resolved per chain by ``discover_chains``)."""
    return ChainSetup(
        rpc_urls=settings.network_urls, provider_keys=settings.provider_keys,
        fee_tokens=settings.provider_fee_tokens, address_file=settings.address_file,
        rpc_timeout=settings.rpc_timeout, state_ttl=settings.chain_state_ttl,
    )


def docker_options(settings: Settings) -> DockerOptions | None:
    """The Docker engine's configuration when ``DOCKER_HOST`` or ``TIDEGATE_DOCKER_HOSTS``
    is set."""
    if not settings.docker_urls:
        return None
    return DockerOptions(user=settings.docker_user, network=settings.docker_network,
                         pull_timeout=settings.docker_pull_timeout,
                         require_checksum=settings.docker_require_checksum,
                         image_cache_bytes=None if settings.docker_image_cache_gb is None
                         else int(settings.docker_image_cache_gb * 1024**3),
                         registry_auth={registry: (user, password.get_secret_value())
                                        for registry, (user, password)
                                        in settings.docker_registry_auth.items()},
                         max_processes=max(1, settings.compute_max_processes),
                         tmp_bytes=max(1, settings.compute_tmp_mb) * 1024 * 1024,
                         min_free_bytes=settings.compute_min_free_mb * 1024 * 1024,
                         max_output_files=settings.compute_max_output_files,
                         place_by_capacity=bool(settings.docker_hosts))


def docker_client(settings: Settings, url: str | None = None) -> aiodocker.Docker | None:
    """The client of the daemon at ``url`` (default: the first of ``docker_urls``; None
    when no daemon is configured); call inside the event loop.

    TCP daemons need TLS (``DOCKER_TLS_VERIFY``, certificates in ``DOCKER_CERT_PATH``:
    ``ca.pem``, ``cert.pem``, ``key.pem``; the same for every host), always verified;
    plain TCP only to loopback, as a daemon's API is root on its host for whoever
    reaches it.
    """
    host = url or next((h.url for h in settings.docker_urls), None)
    if host is None:
        return None
    if host.startswith("unix://"):
        return aiodocker.Docker(url=host)
    if settings.docker_tls_verify or host.startswith("https://"):
        certs = settings.docker_cert_path
        context = ssl.create_default_context(
            cafile=str(certs / "ca.pem") if certs and (certs / "ca.pem").is_file() else None)
        if certs is not None and (certs / "cert.pem").is_file():
            context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
        return aiodocker.Docker(url=re.sub(r"^(tcp|http)://", "https://", host),
                                ssl_context=context)
    name = urlsplit(host).hostname or ""
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        variable = "TIDEGATE_DOCKER_HOSTS" if settings.docker_hosts else "DOCKER_HOST"
        raise ConfigurationError(f"{variable}: a TCP daemon needs TLS (DOCKER_TLS_VERIFY=1 "
                                 "and DOCKER_CERT_PATH) unless it is on loopback")
    return aiodocker.Docker(url=re.sub(r"^tcp://", "http://", host))


def docker_hosts(settings: Settings, stack: AsyncExitStack) -> list[DockerHost]:
    """The daemons of ``TIDEGATE_DOCKER_HOSTS`` (``Docker host 1``, ``2``… in order, with
    their configured capacity), else of ``DOCKER_HOST``; each client is closed by
    ``stack`` (after the engine's close). Call inside the event loop."""
    several = bool(settings.docker_hosts)
    hosts: list[DockerHost] = []
    for number, entry in enumerate(settings.docker_urls, start=1):
        client = docker_client(settings, entry.url)
        assert client is not None
        stack.push_async_callback(client.close)
        hosts.append(DockerHost(
            client, url=entry.url,
            name=f"Docker host {number}" if several else "the Docker daemon",
            cpus=entry.cpus, memory_bytes=None if entry.ram_gb is None
            else int(entry.ram_gb * 1024**3)))
    return hosts


def compute_options(settings: Settings) -> ComputeOptions:
    """This machine's compute engines' configuration (``TIDEGATE_COMPUTE_*``, Docker)."""
    return ComputeOptions(
        environments=settings.compute_environments,
        runtimes=settings.compute_runtimes,
        directory=settings.compute_dir or settings.data_dir / "compute",
        sandbox=SandboxOptions(unsafe_no_sandbox=settings.compute_unsafe_no_sandbox,
                               sandbox_uid=settings.compute_sandbox_uid,
                               max_processes=max(1, settings.compute_max_processes),
                               tmp_bytes=max(1, settings.compute_tmp_mb) * 1024 * 1024,
                               max_output_files=settings.compute_max_output_files,
                               cgroups=settings.compute_cgroups,
                               cgroup_parent=settings.compute_cgroup_parent,
                               seccomp=settings.compute_seccomp),
        docker=docker_options(settings),
        min_free_bytes=settings.compute_min_free_mb * 1024 * 1024,
    )


async def start_escrow_payments(chains: Chains, store: Store, engine: ComputeEngine,
                                stack: AsyncExitStack,
                                ) -> tuple[EscrowComputePayments, PaidJobSettler] | None:
    """Paid compute v2 through the Escrow contract, when some configured chain's
    address file names an ``Escrow`` (None otherwise: paid starts answer 402).

    Starts two background tasks, stopped by ``stack``: the claim queue's retries and
    expired-lock sweep, and the settlement of ended paid jobs.
    """
    if not any(ESCROW_KEY in chain.addresses for chain in chains.by_id.values()):
        return None
    payments = build_escrow_payments(chains.by_id.values(), store)
    compute_payments = EscrowComputePayments(payments)
    settler = PaidJobSettler(engine, compute_payments, store)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(payments.queue.run(CLAIM_RETRY_INTERVAL, stop)),
             asyncio.create_task(settler.run(SETTLE_INTERVAL, stop))]

    async def stop_tasks() -> None:
        stop.set()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task

    stack.push_async_callback(stop_tasks)
    return compute_payments, settler


def create_app(settings: Settings) -> TidegateApp:
    """The ASGI application for ``settings``; clients are built in its lifespan."""
    endpoints = all_endpoints()
    metrics = Metrics()
    gate: RateGate | None = None
    if settings.rate_limit.enabled:
        database_url = (settings.database_url.get_secret_value()
                        if settings.database_url is not None else None)
        shared = shared_state(settings.rate_limit, database_url, settings.sqlite_path)
        gate = RateGate(settings.rate_limit, endpoints, metrics, root_path=settings.root_path,
                        access_log=settings.access_log, backend_name=shared.name)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if gate is not None:
                # Each worker limits on its own at once; the batches to the shared state
                # (Redis or the database) start here and fail open.
                await shared.open()
                stack.push_async_callback(shared.close)
                gate.limiter.start(shared, gate.stats)
                stack.push_async_callback(gate.limiter.stop)
            http = await stack.enter_async_context(httpx.AsyncClient())
            # Asset files get their own clients (they connect only to checked addresses),
            # one per purpose, so that unauthenticated probes of a slow origin cannot
            # take the connections of paid downloads or of compute jobs' inputs.
            budget = ReadBudget(settings.relay_read_budget)  # one buffer for all of them

            async def fetcher_for(connections: int, total: float | None) -> SafeFetcher:
                client = await stack.enter_async_context(
                    PinnedAsyncClient(limit=connections, read_budget=budget))
                return SafeFetcher(client, FetchPolicy(
                    allow_private_addresses=settings.allow_private_urls,
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    total_timeout=total,
                ))

            fetcher = await fetcher_for(settings.download_connections, None)
            probe_fetcher = await fetcher_for(settings.probe_connections, settings.probe_timeout)
            compute_fetcher = await fetcher_for(settings.compute_fetch_connections, None)
            store = build_store(settings.database_url, settings.sqlite_path)
            await store.open()
            stack.push_async_callback(store.close)
            chains = await discover_chains(chain_setup(settings), http)
            stack.push_async_callback(chains.close)
            secret = (settings.auth_token_secret.get_secret_value()
                      if settings.auth_token_secret is not None else
                      await store.get_or_create_secret("auth_token_secret",
                                                       secrets.token_hex(32)))
            tokens = AuthTokens(secret, store)
            resolver: Resolver = (
                AquariusResolver(http, settings.aquarius_url)
                if settings.aquarius_url else IndexedResolver(store)
            )
            storage = StorageContext(
                ipfs_gateway=settings.ipfs_gateway,
                arweave_gateway=settings.arweave_gateway,
                chains=chains,
                fetcher=fetcher,
                max_checksum_length=settings.max_checksum_length,
            )
            probe_storage = replace(storage, fetcher=probe_fetcher)
            engine: ComputeEngine
            operator = operator_engine(
                settings.operator_service_url,
                settings.chain_independent_key.get_secret_value(), http, chains, store,
                metadata_uri=settings.aquarius_url or "")
            if operator is not None:
                engine = operator
            else:
                hosts = docker_hosts(settings, stack)  # closed after the engine's close
                machine = machine_engine(compute_options(settings), store,
                                         replace(storage, fetcher=compute_fetcher), chains,
                                         hosts or None)
                await machine.open()
                engine = machine
            stack.push_async_callback(engine.close)
            # After the engine's close is pushed (the stack runs backwards): the payment
            # tasks stop before the engine and the store close. Paid jobs are settled
            # from the stored escrow locks, on every engine.
            escrow = await start_escrow_payments(chains, store, engine, stack)

            async def contract_signer(wallet: str, digests: tuple[bytes, ...],
                                      signature: bytes) -> bool:
                # As Ocean Node: the smart account is asked on the first configured chain.
                chain = chains.by_id[chains.ids[0]]
                return await approves_any(chain.web3, wallet, digests, signature)

            app.state.services = Services(
                settings=settings,
                store=store,
                chains=chains,
                tokens=tokens,
                authenticator=RequestAuthenticator(
                    store, tokens, signer_limit=gate.check_signer if gate else None,
                    contract_signer=contract_signer if chains.ids else None),
                resolver=resolver,
                fetcher=fetcher,
                orders=OrderValidator(settings.pending_tx_wait),
                storage=storage,
                probe_storage=probe_storage,
                probe_slots=ConcurrencySlots(settings.probes_per_client),
                client_keys=ClientKeys(settings.rate_limit.trusted_proxies),
                engine=engine,
                search_index=SearchIndex(store),
                compute_payments=escrow[0] if escrow else None,
            )
            app.state.paid_job_settler = escrow[1] if escrow else None
            # Build the query index in the background (it yields between batches); the
            # first query waits for it, later ones only apply the store's new changes.
            warm_up = asyncio.create_task(app.state.services.search_index.refresh())

            async def stop_warm_up() -> None:
                warm_up.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await warm_up

            stack.push_async_callback(stop_warm_up)
            if settings.indexer_enabled:
                stop = asyncio.Event()
                options = IndexerOptions(
                    start_block=settings.indexer_start_block,
                    confirmations=settings.indexer_confirmations,
                    poll_interval=settings.indexer_poll_interval,
                    node_fields_v4=settings.indexer_node_fields_v4,
                )
                indexers = [ChainIndexer(c, store, options) for c in chains.by_id.values()]
                task = asyncio.create_task(run_indexers(indexers, stop))
                app.state.indexers = indexers

                async def stop_indexers() -> None:
                    stop.set()
                    await task

                stack.push_async_callback(stop_indexers)
            yield

    routes: list[BaseRoute] = list(starlette_routes(endpoints))
    if settings.root_path:
        # Mounted under a prefix, but GET / also answers at the host root: ocean.py
        # asks scheme://host[:port]/ for providerAddresses whatever the prefix.
        root_route = next(r for r in routes if isinstance(r, Route) and r.path == "/")
        routes = [root_route, Mount(settings.root_path, routes=routes)]

    app = TidegateApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(ObservabilityMiddleware, metrics=metrics, log_access=settings.access_log),
            cors_middleware(),
        ],
    )
    app.state.endpoints = endpoints
    app.inbound_limits = InboundLimits(
        header_timeout=settings.header_timeout, body_timeout=settings.body_timeout,
        slow_after=settings.slow_request_after,
        slow_per_client=settings.slow_requests_per_client,
        max_header_bytes=settings.max_header_bytes, max_url_bytes=settings.max_url_bytes,
        trusted_proxies=settings.rate_limit.trusted_proxies)
    app.state.metrics = metrics
    app.rate_gate = gate
    if settings.fast_routes:
        app.hot_routes = HotRoutes(app.state, metrics, root_path=settings.root_path,
                                   access_log=settings.access_log)
    return app


def app_from_env() -> TidegateApp:
    """Factory for ``uvicorn --factory`` (each worker reads the same environment).

    Logging is configured here too: with ``--workers N`` uvicorn starts each worker as
    a new process, which inherits none of the parent's configuration.
    """
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
