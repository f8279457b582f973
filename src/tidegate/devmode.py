"""``tidegate dev``: a complete Ocean back end in one process, for development.

Starts the in-process EVM (chain 8996) with the Ocean v4 contracts deployed, serves
it over JSON-RPC on loopback, writes a barge-layout address file, serves a demo file
on loopback, runs Tidegate (built-in indexer, SQLite) against that chain, publishes a
demo dataset through Tidegate's own ``/encrypt``, funds a consumer with OCEAN and
datatokens, and prints what a client needs. Nothing persists unless ``data_dir`` is
given (the chain itself always starts fresh).
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import io
import logging
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account

from tidegate.app import create_app
from tidegate.assets.publishing import AssetDescription, PublishedAsset, publish_asset
from tidegate.chain.contracts import write_address_file
from tidegate.chain.devchain import DevChain
from tidegate.chain.ocean_txs import ONE_TOKEN, mint_datatoken
from tidegate.chain.rpc_shim import RpcServer, start_rpc_server
from tidegate.settings import Settings

log = logging.getLogger(__name__)

DEMO_CSV = b"city,temperature\nAmsterdam,12.5\nLisbon,19.0\nOslo,4.25\n"
PUBLISHER, CONSUMER = 1, 2


@dataclass(frozen=True)
class DevEnvironment:
    """Everything ``tidegate dev`` started, for printing and for tests."""

    chain: DevChain
    rpc: RpcServer
    address_file: Path
    data_dir: Path
    files_url: str
    settings: Settings


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support (like any real origin)."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def send_head(self) -> Any:
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not spec or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        match = _RANGE.match(spec.strip())
        start = end = -1
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else size - 1
            else:
                start, end = max(size - int(match.group(2)), 0), size - 1
        if start < 0 or start >= size or end < start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        end = min(end, size - 1)
        with path.open("rb") as handle:
            handle.seek(start)
            body = handle.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)


def serve_directory(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``directory`` on a free loopback port (the demo asset's origin)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="tidegate-demo-files").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def start_dev_environment(data_dir: Path | None, rpc_port: int) -> DevEnvironment:
    """Chain + contracts + JSON-RPC + address file + demo origin, and the settings."""
    directory = data_dir or Path(tempfile.mkdtemp(prefix="tidegate-dev-"))
    directory.mkdir(parents=True, exist_ok=True)
    chain = DevChain()
    addresses = chain.deploy_ocean_contracts()
    rpc = start_rpc_server(chain, port=rpc_port)
    address_file = directory / "address.json"
    write_address_file(address_file, "development", chain.chain_id, dict(addresses))
    files = directory / "files"
    files.mkdir(exist_ok=True)
    (files / "demo.csv").write_bytes(DEMO_CSV)
    _, files_url = serve_directory(files)
    settings = Settings.from_env({
        "PROVIDER_PRIVATE_KEY": "0x" + bytes(Account.create().key).hex(),
        "NETWORK_URL": rpc.url,
        "ADDRESS_FILE": str(address_file),
        "TIDEGATE_DATA_DIR": str(directory),
        "TIDEGATE_ALLOW_PRIVATE_URLS": "true",
        "TIDEGATE_INDEXER_POLL_INTERVAL": "0.2",
        "LOG_LEVEL": "WARNING",
    })
    return DevEnvironment(chain, rpc, address_file, directory, files_url, settings)


def publish_demo(env: DevEnvironment, provider_url: str) -> PublishedAsset:
    """Publish the demo dataset and give the consumer OCEAN and datatokens."""
    w3 = env.chain.w3
    publisher = env.chain.accounts[PUBLISHER]
    consumer = env.chain.accounts[CONSUMER]
    assert env.chain.addresses is not None

    def encrypt(data: bytes) -> str:
        response = httpx.post(f"{provider_url}/api/services/encrypt",
                              params={"chainId": env.chain.chain_id}, content=data,
                              headers={"Content-Type": "application/octet-stream"})
        response.raise_for_status()
        return response.text

    provider_address = httpx.get(provider_url + "/").json()["providerAddresses"]["8996"]
    asset = publish_asset(
        w3, dict(env.chain.addresses), publisher,
        AssetDescription(
            name="Tidegate demo temperatures",
            description="A tiny CSV served on loopback by tidegate dev.",
            files=[{"type": "url", "url": env.files_url + "/demo.csv", "method": "GET"}],
            services=("access", "compute"),
        ),
        provider_url=provider_url, provider_address=provider_address, encrypt=encrypt,
    )
    mint_datatoken(w3, publisher, asset.datatoken_address, consumer.address, 10 * ONE_TOKEN)
    env.chain.mint_ocean(consumer.address, 1000 * ONE_TOKEN)
    return asset


def _summary(env: DevEnvironment, provider_url: str, asset: PublishedAsset) -> str:
    consumer = env.chain.private_key(CONSUMER)
    return "\n".join([
        "Tidegate dev is running.",
        f"  provider URL    {provider_url}",
        f"  RPC URL         {env.rpc.url}  (chain id {env.chain.chain_id})",
        f"  address file    {env.address_file}",
        f"  demo DID        {asset.did}",
        f"  consumer        {env.chain.accounts[CONSUMER].address}",
        f"  consumer key    {consumer}  (public dev key: 10 datatokens, 1000 OCEAN)",
        f"  resolve it:     curl {provider_url}/api/aquarius/assets/ddo/{asset.did}",
        "Press Ctrl-C to stop; nothing is kept.",
    ])


async def run_dev(host: str, port: int, rpc_port: int, data_dir: Path | None) -> None:
    """Run the whole dev stack until cancelled."""
    started = time.monotonic()
    env = await asyncio.to_thread(start_dev_environment, data_dir, rpc_port)
    server = uvicorn.Server(uvicorn.Config(create_app(env.settings), host=host, port=port,
                                           log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it (e.g. the port is taken)
            return
        await asyncio.sleep(0.05)
    provider_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    asset = await asyncio.to_thread(publish_demo, env, provider_url)
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            r = await client.get(f"{provider_url}/api/aquarius/assets/ddo/{asset.did}")
            if r.status_code == 200:
                break
            await asyncio.sleep(0.1)
    print(_summary(env, provider_url, asset))
    print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
    try:
        await serving
    finally:
        env.rpc.close()
