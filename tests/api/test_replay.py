"""50 concurrent requests with the same fresh nonce: exactly one is accepted."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import start_app
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js
from tidegate.settings import Settings


async def _race(settings: Settings) -> list[int]:
    nonce = str(time.time_ns())
    params = {"address": CONSUMER_ADDRESS, "nonce": nonce,
              "expiration": str(int(time.time()) + 600),
              "signature": sign_like_ocean_js(CONSUMER_ADDRESS + nonce, CONSUMER_KEY)}
    async for client in start_app(settings):
        responses = await asyncio.gather(*(
            client.get("/api/services/createAuthToken", params=params) for _ in range(50)
        ))
        return [r.status_code for r in responses]
    raise AssertionError("app did not start")


async def test_replay_sqlite(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    statuses = await _race(make_settings())
    assert statuses.count(200) == 1
    assert statuses.count(401) == 49


async def test_replay_postgres(make_settings: Callable[..., Settings], fresh_pg_url: str) -> None:
    statuses = await _race(make_settings(TIDEGATE_DATABASE_URL=fresh_pg_url))
    assert statuses.count(200) == 1
    assert statuses.count(401) == 49
