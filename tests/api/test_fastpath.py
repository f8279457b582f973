"""The hot routes answer exactly as the full stack does (TIDEGATE_FAST_ROUTES on and off).

Each request is sent to two apps on the same data directory: one with the fast path,
one without. Status, headers and body must be identical, and the fast path must have
answered the well-formed requests itself (counted on the app), not passed them on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import base_env
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_py
from tidegate.api.fastpath import HotRoutes
from tidegate.app import create_app
from tidegate.settings import Settings

NONCE = "/api/services/nonce"
ADDRESS_LOWER = CONSUMER_ADDRESS.lower()


class Pair:
    def __init__(self, fast: httpx.AsyncClient, full: httpx.AsyncClient,
                 hot: HotRoutes) -> None:
        self.fast, self.full, self.hot_answers = fast, full, 0
        answer = hot.answer

        async def counted(scope: object, send: object) -> bool:
            done = await answer(scope, send)  # type: ignore[arg-type]
            self.hot_answers += done
            return done

        hot.answer = counted  # type: ignore[method-assign]

    async def compare(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        fast = await self.fast.request(method, url, **kwargs)  # type: ignore[arg-type]
        full = await self.full.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert (fast.status_code, fast.content) == (full.status_code, full.content)
        # Request ids are fresh per request: both paths send one, the rest is identical.
        assert len(fast.headers.get_list("x-request-id")) == 1
        assert len(full.headers.get_list("x-request-id")) == 1

        def rest(r: httpx.Response) -> list[tuple[str, str]]:
            return sorted(i for i in r.headers.multi_items() if i[0] != "x-request-id")

        assert rest(fast) == rest(full)
        return fast


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    fast_app = create_app(Settings.from_env(base_env(tmp_path)))
    full_app = create_app(Settings.from_env(base_env(tmp_path, TIDEGATE_FAST_ROUTES="false")))
    assert fast_app.hot_routes is not None and full_app.hot_routes is None
    async with fast_app.router.lifespan_context(fast_app), \
            full_app.router.lifespan_context(full_app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=fast_app),
                              base_url="http://tidegate") as fast, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=full_app),
                              base_url="http://tidegate") as full:
        yield Pair(fast, full, fast_app.hot_routes)


async def test_well_formed_nonce_requests_take_the_fast_path(pair: Pair) -> None:
    for form in (CONSUMER_ADDRESS, ADDRESS_LOWER, "0x" + CONSUMER_ADDRESS[2:].upper()):
        r = await pair.compare("GET", f"{NONCE}?userAddress={form}")
        assert r.json() == {"nonce": 1}
    r = await pair.compare("GET", f"{NONCE}?userAddress={ADDRESS_LOWER}",
                           headers={"Origin": "https://market.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert pair.hot_answers == 4


async def test_the_fast_path_reads_the_nonce_the_other_app_advanced(pair: Pair) -> None:
    nonce = "1795533623683040263"
    r = await pair.full.get("/api/services/createAuthToken", params={
        "address": ADDRESS_LOWER, "nonce": nonce, "expiration": "9999999999",
        "signature": sign_like_ocean_py(ADDRESS_LOWER + nonce, CONSUMER_KEY),
    })
    assert r.status_code == 200, r.text
    r = await pair.compare("GET", f"{NONCE}?userAddress={CONSUMER_ADDRESS}")
    assert r.json() == {"nonce": int(nonce)}
    assert pair.hot_answers == 1


@pytest.mark.parametrize("query", [
    "", "?userAddress=", "?userAddress=0x123",
    f"?userAddress={ADDRESS_LOWER}&extra=1", f"?userAddress={ADDRESS_LOWER[:-2]}%41%41",
    f"?useraddress={ADDRESS_LOWER}", f"?userAddress={ADDRESS_LOWER}x",
])
async def test_anything_else_takes_the_full_path(pair: Pair, query: str) -> None:
    await pair.compare("GET", NONCE + query)
    assert pair.hot_answers == 0


async def test_a_json_body_or_another_method_takes_the_full_path(pair: Pair) -> None:
    url = f"{NONCE}?userAddress={ADDRESS_LOWER}"
    await pair.compare("GET", url, content=b"{not json",
                       headers={"Content-Type": "application/json"})
    await pair.compare("GET", NONCE, content=b'{"userAddress": "%s"}' % ADDRESS_LOWER.encode(),
                       headers={"Content-Type": "application/json"})
    await pair.compare("POST", url)
    await pair.compare("HEAD", url)
    await pair.compare("OPTIONS", url, headers={"Origin": "https://m.example",
                                                "Access-Control-Request-Method": "GET"})
    assert pair.hot_answers == 0


async def test_root_is_rendered_once_then_served_fast(pair: Pair) -> None:
    first = await pair.compare("GET", "/")
    assert pair.hot_answers == 0  # the full route renders and caches the document
    again = await pair.compare("GET", "/", headers={"Origin": "https://m.example"})
    assert again.content == first.content
    assert pair.hot_answers == 1


async def test_metrics_count_fast_answers_under_the_route(pair: Pair) -> None:
    for _ in range(3):
        await pair.fast.get(f"{NONCE}?userAddress={ADDRESS_LOWER}")
    text = (await pair.fast.get("/metrics")).text
    assert ('tidegate_requests_total{method="GET",route="/api/services/nonce",status="200"} 3.0'
            in text)
    assert 'tidegate_request_duration_seconds_count{method="GET",route="/api/services/nonce"} 3.0' \
        in text
