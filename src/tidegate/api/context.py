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
from tidegate.compute.engines.base import ComputeEngine
from tidegate.files.objects import StorageContext
from tidegate.files.safe_fetch import SafeFetcher
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
    """Outbound HTTP for asset bytes (public addresses only unless allowed)."""
    orders: OrderValidator
    storage: StorageContext
    engine: ComputeEngine
    search_index: SearchIndex
    """The in-memory index that answers POST /api/aquarius/assets/query."""


def services(request: Request) -> Services:
    """The process's services (set by the app's lifespan)."""
    svc: Services = request.app.state.services
    return svc
