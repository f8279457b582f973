"""Shared fixtures: settings, stores (SQLite and PostgreSQL), an app client."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import PROVIDER_KEY
from tests.secret_watch import WATCH
from tidegate.app import create_app
from tidegate.settings import Settings
from tidegate.stores.postgres import PostgresStore
from tidegate.stores.sqlite import SqliteStore

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def base_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY}),
        # JSON mode: chain ids come from the map, no RPC call is needed.
        "NETWORK_URL": json.dumps({"8996": "http://127.0.0.1:9"}),
        "TIDEGATE_DATA_DIR": str(tmp_path),
        "TIDEGATE_ACCESS_LOG": "false",
        "TIDEGATE_INDEXER": "false",
        # No gateways (set empty): tests never reach the public ipfs.io / arweave.net.
        "IPFS_GATEWAY": "",
        "ARWEAVE_GATEWAY": "",
        # Tests fire many requests from one address; the limiter's own tests turn it on.
        "TIDEGATE_RATE_LIMIT": "false",
    }
    env.update(overrides)
    return env


def offline_address_file(directory: Path) -> Path:
    """A barge-layout address file for chain 8996 with made-up contract addresses: what
    ``tidegate serve``'s start-up checks require of a chain (tests with no real chain)."""
    path = directory / "address.json"
    fake = {name: "0x" + f"{n:02x}" * 20 for n, name in enumerate(
        ("Ocean", "Router", "FixedPrice", "Dispenser", "ERC721Factory"), start=1)}
    path.write_text(json.dumps({"development": {"chainId": 8996, "startBlock": 0, **fake}}))
    return path


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: str) -> Settings:
        return Settings.from_env(base_env(tmp_path, **overrides))

    return build


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A private schema in the local PostgreSQL `test` database (required in CI)."""
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    schema = "tg_" + secrets.token_hex(6)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_ADMIN_URL}?search_path={schema}"
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


@pytest.fixture
async def fresh_pg_url(pg_url: str) -> AsyncIterator[str]:
    """The session schema, emptied before the test."""
    conn = await asyncpg.connect(pg_url)
    try:
        for table in ("nonces", "revoked_tokens", "secrets", "ddos", "cursors", "leases",
                      "compute_jobs", "rate_limits", "escrow_claims", "escrow_locks"):
            await conn.execute(
                f"DO $$ BEGIN IF to_regclass('{table}') IS NOT NULL THEN "
                f"EXECUTE 'TRUNCATE {table}'; END IF; END $$"
            )
    finally:
        await conn.close()
    yield pg_url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each store implementation."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


def open_store(url: str) -> SqliteStore | PostgresStore:
    if url.startswith("sqlite://"):
        return SqliteStore(Path(url.removeprefix("sqlite://")))
    return PostgresStore(url)


async def start_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tidegate",
                                     event_hooks={"response": [WATCH.check_response]}
                                     ) as client:
            yield client


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async for c in start_app(make_settings()):
        yield c


def json_of(response: httpx.Response) -> Any:
    return response.json()


from tests.chain_fixtures import (  # noqa: E402  (fixtures for the chain tests)
    chain_client,
    chain_config,
    chain_settings,
    harness,
    session_harness,
)

__all__ = ["chain_client", "chain_config", "chain_settings", "harness", "session_harness"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark chain tests ``chain``; skip ``devchain_only`` ones on anvil (chain_fixtures)."""
    from tests.chain_fixtures import mark_chain_tests

    mark_chain_tests(items)


def pytest_configure(config: pytest.Config) -> None:
    # INFO records too (a production log level), not only warnings; a test's own
    # caplog.set_level still lowers it.
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger().addHandler(WATCH)


@pytest.fixture(autouse=True)
def _no_provider_key_anywhere() -> Iterator[None]:
    """Fails the test whose log lines or error bodies held the provider key."""
    root = logging.getLogger()
    if WATCH not in root.handlers:  # configure_logging (app_from_env, the CLI) replaces them
        root.addHandler(WATCH)
    WATCH.hits.clear()
    yield
    hits, WATCH.hits[:] = list(WATCH.hits), []
    assert not hits, "the provider key leaked:\n" + "\n".join(hits)
