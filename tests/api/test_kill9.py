"""``tidegate serve`` killed with SIGKILL in the middle of a download, a compute job and
index writes, then started again on the same data dir: nothing it acknowledged is lost
(#16 item 6).

Acknowledged means answered with a 2xx: a nonce that was accepted stays consumed, an
auth token that was issued still works and one that was revoked stays revoked, an
indexed DDO is still served and the indexer goes on from its cursor, and a job that was
running is reported as interrupted (never left running forever).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.access_helpers import download_params, order
from tests.api.test_compute import PYTHON, environment, initialize, pay, publish_dataset, start
from tests.api.test_faults import BrokenOrigin, broken_origin  # noqa: F401 (fixture)
from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, PROVIDER_KEY, sign_like_ocean_js

NONCE = "/api/services/nonce"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(harness: ChainHarness, data_dir: Path) -> dict[str, str]:
    """What the in-process tests' chain_settings hold, as a real process's environment."""
    return {
        **os.environ,
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "NETWORK_URL": harness.rpc.url,
        "ADDRESS_FILE": str(harness.address_file),
        "TIDEGATE_DATA_DIR": str(data_dir),
        "TIDEGATE_ALLOW_PRIVATE_URLS": "true",
        "TIDEGATE_INDEXER_POLL_INTERVAL": "0.05",
        "TIDEGATE_CHAIN_STATE_TTL": "0",
        "TIDEGATE_RATE_LIMIT": "false",
        "TIDEGATE_ACCESS_LOG": "false",
    }


@asynccontextmanager
async def serving(env: dict[str, str], log: Path) -> AsyncIterator[tuple[str, Any]]:
    """A ``tidegate serve`` process; yields its URL and the process (to kill)."""
    port = _free_port()
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidegate", "serve", "--host", "127.0.0.1",
            "--port", str(port), env=env, stdout=out, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await probe.get(url + "/health", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.returncode is not None:
                    output = log.read_text()[-3000:]  # noqa: ASYNC240 (a failure report)
                    raise RuntimeError("server did not start: " + output)
                await asyncio.sleep(0.1)
        yield url, proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def _signed(path_message: Callable[[str], str]) -> dict[str, str]:
    nonce = str(time.time_ns())
    return {"nonce": nonce, "signature": sign_like_ocean_js(path_message(nonce), CONSUMER_KEY)}


async def _create_token(client: httpx.AsyncClient, lifetime: int) -> tuple[str, str]:
    # One address and expiration give one token (as the reference): vary the lifetime.
    signed = _signed(lambda n: CONSUMER_ADDRESS + n)
    r = await client.get("/api/services/createAuthToken", params={
        "address": CONSUMER_ADDRESS, "expiration": str(int(time.time()) + lifetime),
        **signed})
    assert r.status_code == 200, r.text
    return r.json()["token"], signed["nonce"]


async def test_kill_9_loses_nothing_acknowledged(
        harness: ChainHarness, broken_origin: BrokenOrigin,  # noqa: F811
        tmp_path: Path) -> None:
    compute = shutil.which("bwrap") is not None
    data_dir = tmp_path / "data"
    env = _environment(harness, data_dir)
    log = tmp_path / "serve.log"
    asset = harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"}])
    stalled = harness.publish(files=[{"type": "url", "url": broken_origin.url + "/stalls"}])
    harness.give_datatokens(asset)
    harness.give_datatokens(stalled)
    dataset = publish_dataset(harness, allowRawAlgorithm=True) if compute else None

    async with serving(env, log) as (url, proc), \
            httpx.AsyncClient(base_url=url, timeout=30) as client:
        await wait_for_ddo(client, stalled.did)
        tx = await order(client, harness, asset)
        stalled_tx = await order(client, harness, stalled)
        kept, _ = await _create_token(client, 3600)
        revoked, _ = await _create_token(client, 7200)
        signed = _signed(lambda n: CONSUMER_ADDRESS + n)
        r = await client.request("DELETE", "/api/services/deleteAuthToken", params={
            "address": CONSUMER_ADDRESS, "token": revoked, **signed})
        assert r.status_code == 200, r.text
        job_id = None
        if dataset is not None:
            await wait_for_ddo(client, dataset.did)
            env_info = await environment(client)
            raw = {"meta": {"rawcode": "import time\nprint('up', flush=True)\n"
                                       "time.sleep(120)\n", "container": PYTHON}}
            quotes = (await initialize(client, dataset, raw, env_info["id"])).json()
            job_tx = pay(harness, dataset, quotes["datasets"][0], env_info["consumerAddress"])
            r = await start(client, dataset, job_tx, raw, env_info["id"])
            assert r.status_code == 200, r.text
            job_id = r.json()[0]["jobId"]
        # In flight at the kill: a download (its origin stalls after 64 KiB) and the
        # indexing of assets published just now.
        download = client.stream("GET", "/api/services/download",
                                 params=download_params(stalled, stalled_tx))
        response = await download.__aenter__()
        assert response.status_code == 200
        chunks = response.aiter_raw()
        await chunks.__anext__()
        last = await client.get(NONCE, params={"userAddress": CONSUMER_ADDRESS})
        acknowledged = last.json()["nonce"]  # the download's, accepted before it streamed
        late = [harness.publish(files=[{"type": "url", "url": harness.origin + "/data.csv"}])
                for _ in range(3)]
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        with pytest.raises(httpx.HTTPError):  # the consumer sees the download broken off
            async for _ in chunks:
                pass
        await download.__aexit__(None, None, None)

    db = next(data_dir.glob("*.db"))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    async with serving(env, log) as (url, _), \
            httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get(NONCE, params={"userAddress": CONSUMER_ADDRESS})
        assert r.json()["nonce"] == acknowledged
        # The issued token still works, the revoked one stays revoked.
        params = {k: v for k, v in download_params(asset, tx).items() if k != "signature"}
        r = await client.get("/api/services/download", params=params,
                             headers={"AuthToken": kept})
        assert r.status_code == 200, r.text
        r = await client.get("/api/services/download", params=params,
                             headers={"AuthToken": revoked})
        assert r.status_code == 401, r.text
        # An accepted nonce is not accepted again.
        replay = download_params(asset, tx)
        replay["nonce"] = str(acknowledged)
        replay["signature"] = sign_like_ocean_js(asset.did + str(acknowledged), CONSUMER_KEY)
        r = await client.get("/api/services/download", params=replay)
        assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low")
        # The index kept what it had and goes on from its cursor.
        await wait_for_ddo(client, asset.did, wait=2)
        for published in late:  # after the killed process's indexer lease (15 s) lapses
            await wait_for_ddo(client, published.did, wait=40)
        if job_id is not None:
            deadline = time.monotonic() + 40  # the lease (15 s) must lapse first
            while True:
                [job] = (await client.get("/api/services/compute", params={
                    "consumerAddress": CONSUMER_ADDRESS, "jobId": job_id})).json()
                if job["status"] == 70 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert job["status"] == 70, job
            assert "restart" in job["statusText"].lower() or "restart" in str(job), job
