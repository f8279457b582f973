"""Choose the store implementation from settings (called by app.py only)."""

from __future__ import annotations

from pathlib import Path

from tidegate.settings import Settings
from tidegate.stores.base import Store
from tidegate.stores.postgres import PostgresStore
from tidegate.stores.sqlite import SqliteStore


def build_store(settings: Settings) -> Store:
    """SQLite under the data directory by default; PostgreSQL for postgresql:// URLs."""
    url = settings.database_url
    if url is None:
        return SqliteStore(settings.sqlite_path)
    if url.startswith("sqlite://"):
        return SqliteStore(Path(url.removeprefix("sqlite://")))
    return PostgresStore(url)
