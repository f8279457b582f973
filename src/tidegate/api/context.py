"""What every endpoint can reach: the services app.py built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import Resolver
from tidegate.assets.search_index import SearchIndex
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.tokens import AuthTokens
from tidegate.chain.clients import Chains
from tidegate.commands.compute.context import ComputeContext
from tidegate.commands.compute.node_start import ComputePayments
from tidegate.compute.engines.base import ComputeEngine
from tidegate.files.objects import StorageContext
from tidegate.files.safe_fetch import SafeFetcher
from tidegate.ratelimit.clients import ClientKeys
from tidegate.ratelimit.slots import ConcurrencySlots
from tidegate.settings import Settings
from tidegate.stores.base import Store


@dataclass
class Services:
    """Long-lived clients and domain services of one process."""

    settings: Settings
    store: Store
    chains: Chains
    tokens: AuthTokens
    authenticator: RequestAuthenticator
    resolver: Resolver
    fetcher: SafeFetcher
    """Outbound HTTP for paid downloads (public addresses only unless allowed)."""
    orders: OrderValidator
    storage: StorageContext
    """Files reached for paid downloads (its own connections: ``fetcher``)."""
    probe_storage: StorageContext
    """Files reached for probes: fileinfo, initialize, compute checks (own connections,
    each probe within ``TIDEGATE_PROBE_TIMEOUT``)."""
    probe_slots: ConcurrencySlots
    """Probing requests in flight per client key (``TIDEGATE_PROBES_PER_CLIENT``)."""
    client_keys: ClientKeys
    """Who a request's client is (the socket peer, or a trusted proxy's word)."""
    engine: ComputeEngine
    search_index: SearchIndex
    """The in-memory index that answers POST /api/aquarius/assets/query."""
    compute_payments: ComputePayments | None = None
    """Pays for paid compute of Ocean Node's protocol (``EscrowComputePayments``, set by
    app.py when a chain has an ``Escrow``). None: such starts and initializeCompute
    answer 402 ``escrow_unavailable`` (``commands/compute/node_start.py``)."""


def services(request: Request) -> Services:
    """The process's services (set by the app's lifespan)."""
    svc: Services = request.app.state.services
    return svc


def compute_context(request: Request) -> ComputeContext:
    """What the compute commands need, from the process's services (both generations)."""
    svc = services(request)
    return ComputeContext(
        resolver=svc.resolver, chains=svc.chains, orders=svc.orders, storage=svc.probe_storage,
        engine=svc.engine, authenticator=svc.authenticator)
