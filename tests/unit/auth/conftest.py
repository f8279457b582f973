"""An opened store of each kind (SQLite, PostgreSQL) for the auth tests."""

from collections.abc import AsyncIterator

import pytest

from tests.conftest import open_store
from tidegate.stores.base import Store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
