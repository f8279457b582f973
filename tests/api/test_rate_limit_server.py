"""Real `tidegate serve` processes (uvloop, httptools) share one limit without Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import base_env, offline_address_file

NONCE = "/api/services/nonce?userAddress=0x" + "ab" * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(env: dict[str, str], log: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidegate", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(workers)],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start: " + log.read_text())
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_two_processes_on_one_data_dir_share_the_limit(tmp_path: Path) -> None:
    env = base_env(tmp_path, ADDRESS_FILE=str(offline_address_file(tmp_path)),
                   TIDEGATE_RATE_LIMIT="true", TIDEGATE_RATE_LIMIT_READ_BURST="10",
                   TIDEGATE_RATE_LIMIT_READ_RATE="0.01")
    with serve(env, tmp_path / "a.log") as one, serve(env, tmp_path / "b.log") as two:
        with httpx.Client(base_url=one) as client:
            assert {client.get(NONCE).status_code for _ in range(10)} == {200}
        time.sleep(0.5)  # the next batch (every 100 ms) carries them to ratelimit.db
        with httpx.Client(base_url=two) as client:
            r = client.get(NONCE)
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1


def test_serve_with_two_workers_stops_300_back_to_back_requests(tmp_path: Path) -> None:
    """Default limits: the read class lets 120 through at once, for both workers together
    (without sharing, each worker would admit its own 120)."""
    env = base_env(tmp_path, ADDRESS_FILE=str(offline_address_file(tmp_path)),
                   TIDEGATE_RATE_LIMIT="true")
    with serve(env, tmp_path / "server.log", workers=2) as url:
        time.sleep(2)  # both workers up

        async def flood() -> list[int]:
            codes: list[int] = []

            async def connection() -> None:
                async with httpx.AsyncClient(base_url=url,
                                             limits=httpx.Limits(max_connections=1)) as c:
                    for _ in range(25):
                        codes.append((await c.get(NONCE)).status_code)

            await asyncio.gather(*(connection() for _ in range(12)))
            return codes

        codes = asyncio.run(flood())
    assert len(codes) == 300 and set(codes) <= {200, 429}
    assert 120 <= codes.count(200) <= 150, codes.count(200)
