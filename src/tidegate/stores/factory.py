"""Choose the store implementation from the configured database (composition roots only)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from tidegate.stores.base import Store
from tidegate.stores.postgres import PostgresStore
from tidegate.stores.sqlite import SqliteStore


def build_store(database_url: SecretStr | None, sqlite_path: Path) -> Store:
    """``sqlite_path`` when no URL is set; ``sqlite://PATH``; PostgreSQL for postgresql:// URLs.

    ``database_url`` (``TIDEGATE_DATABASE_URL``) stays a secret (it may hold a password)
    until the store opens its connection.
    """
    if database_url is None:
        return SqliteStore(sqlite_path)
    url = database_url.get_secret_value()
    if url.startswith("sqlite://"):
        return SqliteStore(Path(url.removeprefix("sqlite://")))
    return PostgresStore(url)
