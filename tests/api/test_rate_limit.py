"""Rate limiting over HTTP: per client address at the door, per signer once verified,
shared between app instances (workers) through SQLite, PostgreSQL or Redis."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from tests.conftest import base_env
from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_KEY,
    sign_like_ocean_js,
)
from tidegate.api.fastpath import TidegateApp
from tidegate.api.ratelimit import RateGate
from tidegate.app import create_app
from tidegate.settings import Settings

NONCE = f"/api/services/nonce?userAddress={CONSUMER_ADDRESS}"
DDO = "/api/aquarius/assets/ddo/did:op:" + "0" * 64
STATUS = f"/api/services/compute?consumerAddress={CONSUMER_ADDRESS}"
FILEINFO = "/api/services/fileinfo"
DOWNLOAD = "/api/services/download"
TOKEN = "/api/services/createAuthToken"
REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    """A wall clock that moves only when told (``now`` in seconds; read in µs)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> int:
        return round(self.now * 1_000_000)


class Running:
    """An app in its lifespan, and clients on it from any address."""

    def __init__(self, app: TidegateApp) -> None:
        self.app = app
        self._clients: dict[str, httpx.AsyncClient] = {}

    @property
    def gate(self) -> RateGate:
        assert self.app.rate_gate is not None
        return self.app.rate_gate

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        if address not in self._clients:
            self._clients[address] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app, client=(address, 40000)),
                base_url="http://tidegate")
        return self._clients[address]

    async def close(self) -> None:
        for c in self._clients.values():
            await c.aclose()


@asynccontextmanager
async def running(tmp_path: Path, **env: str) -> AsyncIterator[Running]:
    # base_env turns the limiter off for the other tests: on here unless a test says.
    limited = {"TIDEGATE_RATE_LIMIT": "true", **env}
    app = create_app(Settings.from_env(base_env(tmp_path, **limited)))
    async with app.router.lifespan_context(app):
        run = Running(app)
        try:
            yield run
        finally:
            await run.close()


def random_ip() -> str:
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json() == {"error": "Too many requests: retry later.", "code": "rate_limited"}
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["content-type"] == "application/json"


async def test_a_burst_passes_then_429_with_retry_after_and_cors(tmp_path: Path) -> None:
    async with running(tmp_path, TIDEGATE_RATE_LIMIT_READ_BURST="5",
                       TIDEGATE_RATE_LIMIT_READ_RATE="0.1") as run:
        client = run.client()
        assert statuses([await client.get(NONCE) for _ in range(5)]) == [200] * 5
        r = await client.get(NONCE)
        assert_limited(r)
        assert r.headers["retry-after"] == "10"  # one request per 10 s
        # The same class on the full stack shares the bucket; Origin: exposed Retry-After.
        r = await client.get(DDO, headers={"Origin": "https://market.example"})
        assert_limited(r)
        assert r.headers["access-control-expose-headers"] == "Content-Disposition, Retry-After"
        assert r.headers["vary"] == "Origin"
        # Other classes, other clients and the health checks are not affected.
        assert (await client.post(FILEINFO, json={})).status_code == 400
        assert (await run.client("198.51.100.2").get(NONCE)).status_code == 200
        for path in ("/health", "/health/ready", "/metrics"):  # (ready: no chain here, 503)
            assert (await client.get(path)).status_code != 429
        metrics = (await client.get("/metrics")).text
        assert 'tidegate_rate_limited_total{key="address",route_class="read"} 2.0' in metrics
        assert "127.0.0.1" not in metrics and "198.51.100.2" not in metrics
        assert 'tidegate_requests_total{method="GET",route="/api/services/nonce",status="429"}' \
            in metrics


async def test_defaults_let_100_quick_requests_through_and_stop_300(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        run.gate.set_clock(Clock())  # back to back: no time passes, nothing refills
        quick = [await run.client("198.51.100.10").get(NONCE) for _ in range(100)]
        assert statuses(quick) == [200] * 100
        flood = statuses([await run.client("198.51.100.11").get(NONCE) for _ in range(300)])
        assert flood == [200] * 120 + [429] * 180  # the default burst of the read class
        probes = statuses([await run.client("198.51.100.12").post(FILEINFO, json={})
                           for _ in range(300)])
        assert probes == [400] * 120 + [429] * 180


async def test_a_spoofed_forwarded_for_is_ignored_without_trusted_proxies(
        tmp_path: Path) -> None:
    async with running(tmp_path, TIDEGATE_RATE_LIMIT_READ_BURST="3",
                       TIDEGATE_RATE_LIMIT_READ_RATE="0.01") as run:
        client = run.client("203.0.113.5")
        got = [await client.get(NONCE, headers={"X-Forwarded-For": f"198.51.100.{i}"})
               for i in range(6)]
        assert statuses(got) == [200, 200, 200, 429, 429, 429]


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(tmp_path: Path) -> None:
    async with running(tmp_path, TIDEGATE_RATE_LIMIT_READ_BURST="3",
                       TIDEGATE_RATE_LIMIT_READ_RATE="0.01",
                       TIDEGATE_TRUSTED_PROXIES="10.0.0.0/8") as run:
        proxy = run.client("10.0.0.2")

        async def via_proxy(forwarded: str) -> int:
            r = await proxy.get(NONCE, headers={"X-Forwarded-For": forwarded})
            return r.status_code

        # Each real client has its own bucket behind the proxy ...
        assert [await via_proxy("198.51.100.1") for _ in range(3)] == [200] * 3
        assert [await via_proxy("198.51.100.2") for _ in range(3)] == [200] * 3
        # ... and what a client writes left of the proxy's entry does not change it.
        assert await via_proxy("6.6.6.6, 198.51.100.1") == 429
        assert await via_proxy("7.7.7.7, 198.51.100.2") == 429
        # A client that is itself untrusted is still keyed by its socket address.
        direct = run.client("203.0.113.9")
        got = [await direct.get(NONCE, headers={"X-Forwarded-For": f"198.51.100.{50 + i}"})
               for i in range(4)]
        assert statuses(got) == [200, 200, 200, 429]


@pytest.mark.parametrize("period", [0.5, 5.0])
async def test_status_polling_is_never_starved_by_the_same_client_flooding(
        tmp_path: Path, period: float) -> None:
    clock = Clock()
    async with running(tmp_path) as run:
        run.gate.set_clock(clock)
        client = run.client("198.51.100.20")
        flood: list[int] = []
        polls: list[int] = []
        step, next_poll, end = 0.02, clock.now, clock.now + 40
        while clock.now < end:  # 50 requests per second on each of three other classes
            flood.append((await client.get(NONCE)).status_code)
            flood.append((await client.post(FILEINFO, json={})).status_code)
            flood.append((await client.get(DOWNLOAD)).status_code)
            if clock.now >= next_poll:
                polls.append((await client.get(STATUS)).status_code)
                next_poll += period
            clock.now += step
        assert polls and set(polls) == {200}
        assert flood.count(429) > len(flood) / 2  # the flood itself was limited


async def test_the_per_signer_limit_applies_only_after_a_valid_signature(
        tmp_path: Path) -> None:
    clock = Clock()
    async with running(tmp_path, TIDEGATE_RATE_LIMIT_SIGNED_BURST="3",
                       TIDEGATE_RATE_LIMIT_SIGNED_RATE="0.01") as run:
        run.gate.set_clock(clock)

        def params(nonce: int, key: str = CONSUMER_KEY) -> dict[str, str]:
            return {"address": CONSUMER_ADDRESS, "nonce": str(nonce),
                    "expiration": str(int(clock.now) + 3600),
                    "signature": sign_like_ocean_js(CONSUMER_ADDRESS + str(nonce), key)}

        # Anyone can claim the victim's address (each from a fresh address): no effect.
        for i in range(10):
            r = await run.client(f"203.0.113.{i + 1}").get(TOKEN, params=params(100, OTHER_KEY))
            assert r.status_code == 401, r.text
        victim = run.client("198.51.100.30")
        for nonce in (1, 2, 3):
            r = await victim.get(TOKEN, params=params(nonce))
            assert r.status_code == 200, r.text
        # The fourth, valid, from yet another address: the signer's own bucket is empty.
        r = await run.client("198.51.100.31").get(TOKEN, params=params(4),
                                                  headers={"Origin": "https://dapp.example"})
        assert_limited(r)
        assert r.headers["retry-after"] == "100"
        assert r.headers["access-control-expose-headers"] == "Content-Disposition, Retry-After"
        metrics = (await victim.get("/metrics")).text
        assert 'tidegate_rate_limited_total{key="signer",route_class="signed"} 1.0' in metrics
        assert CONSUMER_ADDRESS not in metrics and CONSUMER_ADDRESS.lower() not in metrics
        # The refused request did not use its nonce: sent again later, it passes.
        clock.now += 100
        r = await run.client("198.51.100.31").get(TOKEN, params=params(4))
        assert r.status_code == 200, r.text


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Settings under which two app instances share their state (as N workers do)."""
    if request.param == "sqlite":
        return {"TIDEGATE_DATA_DIR": str(tmp_path / "shared")}  # serve --workers N
    if request.param == "postgres":
        return {"TIDEGATE_DATABASE_URL": str(request.getfixturevalue("fresh_pg_url"))}
    if not redis_answers():
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    return {"TIDEGATE_REDIS_URL": REDIS_URL}


async def test_two_app_instances_enforce_one_limit(tmp_path: Path,
                                                   shared_env: dict[str, str]) -> None:
    limits = {"TIDEGATE_RATE_LIMIT_READ_BURST": "5", "TIDEGATE_RATE_LIMIT_READ_RATE": "0.01",
              "TIDEGATE_RATE_LIMIT_SIGNED_BURST": "2", "TIDEGATE_RATE_LIMIT_SIGNED_RATE": "0.01"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    address = random_ip()
    async with running(tmp_path / "a", **limits, **shared_env) as one, \
            running(tmp_path / "b", **limits, **shared_env) as two:
        assert statuses([await one.client(address).get(NONCE) for _ in range(3)]) == [200] * 3
        await one.gate.limiter.flush()
        # The second instance knows the client's count from its first request on.
        got = [await two.client(address).get(NONCE) for _ in range(3)]
        assert statuses(got) == [200, 200, 429]
        await two.gate.limiter.flush()
        await one.gate.limiter.flush()
        assert (await one.client(address).get(DDO)).status_code == 429
        metrics = (await two.client(address).get("/metrics")).text
        backend = ("redis" if "TIDEGATE_REDIS_URL" in shared_env else
                   "postgresql" if "TIDEGATE_DATABASE_URL" in shared_env else "sqlite")
        assert f'tidegate_rate_limit_backend_up{{backend="{backend}"}} 1.0' in metrics
        # The per-signer bucket is shared too: spent on one, refused by the other.
        signer = Account.create()  # a new one each run (Redis keeps its keys between runs)
        for nonce, run, expected in ((1, one, 200), (2, one, 200), (3, two, 429)):
            r = await run.client(random_ip()).get(TOKEN, params={
                "address": signer.address, "nonce": str(nonce), "expiration": "9999999999",
                "signature": sign_like_ocean_js(signer.address + str(nonce),
                                                "0x" + bytes(signer.key).hex())})
            assert r.status_code == expected, r.text
            await run.gate.limiter.flush()


async def test_an_unreachable_redis_fails_open_to_per_worker_limits(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once the socket is closed
    async with running(tmp_path, TIDEGATE_REDIS_URL=f"redis://127.0.0.1:{closed}/0",
                       TIDEGATE_RATE_LIMIT_READ_BURST="3",
                       TIDEGATE_RATE_LIMIT_READ_RATE="0.01") as run:
        client = run.client()
        got = [await client.get(NONCE) for _ in range(4)]
        assert statuses(got) == [200, 200, 200, 429]  # served, and still limited locally
        metrics = (await client.get("/metrics")).text
        assert 'tidegate_rate_limit_backend_up{backend="redis"} 0.0' in metrics
        errors = next(line for line in metrics.splitlines()
                      if line.startswith("tidegate_rate_limit_backend_errors_total{"))
        assert float(errors.split()[-1]) >= 1


async def test_the_off_switch(tmp_path: Path) -> None:
    async with running(tmp_path, TIDEGATE_RATE_LIMIT="false") as run:
        assert run.app.rate_gate is None
        client = run.client()
        assert set(statuses([await client.get(NONCE) for _ in range(300)])) == {200}
        assert set(statuses([await client.post(FILEINFO, json={}) for _ in range(300)])) \
            == {400}
        assert "tidegate_rate_limited_total" not in (await client.get("/metrics")).text


async def test_a_class_with_rate_zero_is_not_limited(
        make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(TIDEGATE_RATE_LIMIT="true",
                                   TIDEGATE_RATE_LIMIT_PROBE_RATE="0"))
    assert app.rate_gate is not None
    limit = app.rate_gate.route("POST", FILEINFO)
    assert limit is not None and limit.address is None
