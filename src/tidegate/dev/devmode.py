"""``tidegate dev``: a complete Ocean back end on one machine, for dApp development.

Starts a dev chain (chain id 8996, the barge mnemonic's accounts unlocked and funded)
with the Ocean v4 contracts, writes a barge-layout address file, serves a demo file on
loopback, runs Tidegate (built-in indexer, SQLite) against that chain, publishes a demo
dataset through Tidegate's own ``/encrypt``, funds a consumer with OCEAN and
datatokens, and prints what a client needs (docs/dev.md).

The chain is **anvil** when it can be found (:func:`tidegate.dev.anvil_node.find_anvil`):
a real dev node, so ocean.js's node-side signing (``personal_sign``), ``evm_*`` and
wall-clock block times work, and ``--data-dir`` keeps the chain itself
(``chain-state.json``). Otherwise it is the in-process eth-tester chain behind the
JSON-RPC shim, which cannot persist.

Tidegate reads the same environment as ``tidegate serve`` (:func:`dev_environ`; the CLI
hands it over, nothing here reads the process environment); dev mode only fills in what
is unset, and always points ``NETWORK_URL``/``ADDRESS_FILE`` at
its own chain. With ``--data-dir`` the chain and the index must belong together:
``dev-chain.json`` records the chain's fingerprint (chain id and genesis hash) and the
deployment; an index next to a different or lost chain is refused (:class:`DevModeError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import importlib.util
import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import uvicorn
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from tidegate.api.uvicorn_protocol import HTTP_PROTOCOL
from tidegate.app import create_app
from tidegate.chain.contracts import write_address_file
from tidegate.dev.anvil_node import AnvilError, AnvilNode, NodeChain, find_anvil, free_port
from tidegate.dev.barge import DEV_CHAIN_ID
from tidegate.dev.demo_origin import serve_directory
from tidegate.dev.deploy import OceanAddresses
from tidegate.dev.dev_state import (
    ADDRESS_FILE,
    MANIFEST_FILE,
    STATE_FILE,
    DevModeError,
    chain_fingerprint,
    forget,
    has_code,
    index_state,
    read_json,
    refusal,
    write_json,
)
from tidegate.dev.ocean_txs import ONE_TOKEN, Transactor, contract, mint_datatoken
from tidegate.dev.publishing import AssetDescription, publish_asset
from tidegate.errors import ConfigurationError
from tidegate.logs import configure_logging
from tidegate.settings import Settings

log = logging.getLogger(__name__)

ChainChoice = Literal["auto", "anvil", "embedded"]
CHAIN_CHOICES: tuple[ChainChoice, ...] = ("auto", "anvil", "embedded")

DEMO_CSV = b"city,temperature\nAmsterdam,12.5\nLisbon,19.0\nOslo,4.25\n"
PUBLISHER, CONSUMER = 1, 2
CONSUMER_DATATOKENS = 10 * ONE_TOKEN
CONSUMER_OCEAN = 1000 * ONE_TOKEN

# barge's provider key: the barge mnemonic's account 8 (0xe08A1dAe983BC701D05E492DB80e0144f8f4b909),
# the key of barge's provider container and of the reference Provider's tests. Public.
DEV_PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
DEV_DEFAULTS: Mapping[str, str] = {
    "PROVIDER_PRIVATE_KEY": DEV_PROVIDER_KEY,
    "LOG_LEVEL": "WARNING",
    # The reference Provider's Docker image defaults.
    "IPFS_GATEWAY": "https://ipfs.io",
    "ARWEAVE_GATEWAY": "https://arweave.net/",
    "TIDEGATE_INDEXER_POLL_INTERVAL": "0.2",
    # One developer on loopback, whose test suites fire hundreds of requests a second.
    "TIDEGATE_RATE_LIMIT": "false",
}
ANVIL_BALANCE_ETH = 10_000
STATE_INTERVAL = 2
"""Seconds between anvil's state dumps: a killed session loses at most this much chain."""

ANVIL_LOG = "anvil.log"


class DevChainLike(Protocol):
    """What dev mode uses of a chain: ``NodeChain`` (anvil) and ``DevChain`` satisfy it."""

    w3: Web3
    accounts: list[LocalAccount]
    addresses: OceanAddresses | None

    @property
    def chain_id(self) -> int: ...

    def private_key(self, index: int) -> HexStr: ...

    def deploy_ocean_contracts(self, deployer_index: int = 0) -> OceanAddresses: ...

    def mint_ocean(self, to: str, amount_wei: int, owner_index: int = 0) -> None: ...


@dataclass(frozen=True)
class DemoAsset:
    did: str
    nft_address: str
    datatoken_address: str
    reused: bool


@dataclass
class DevEnvironment:
    """Everything ``tidegate dev`` started, for printing and for tests; ``close()`` stops it."""

    chain: DevChainLike
    backend: Literal["anvil", "embedded"]
    rpc_url: str
    address_file: Path
    data_dir: Path
    persistent: bool
    reused_chain: bool
    files_url: str
    settings: Settings
    manifest: dict[str, Any]
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def save_manifest(self) -> None:
        if self.persistent:
            write_json(self.data_dir / MANIFEST_FILE, self.manifest)

    def close(self) -> None:
        """Stop the demo origin and the chain (anvil saves its state); remove a temporary
        directory. Idempotent."""
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                closer()


# -- environment -----------------------------------------------------------------------


def dev_environ(
    environ: Mapping[str, str], *, rpc_url: str, address_file: Path, data_dir: Path
) -> dict[str, str]:
    """The environment Tidegate runs with under ``tidegate dev``.

    Everything ``tidegate serve`` reads is taken from ``environ``; :data:`DEV_DEFAULTS`
    fill in only what is unset (or empty), and asset URLs on loopback are allowed unless
    the user set either of the two names for it. ``NETWORK_URL``, ``ADDRESS_FILE`` and
    ``TIDEGATE_DATA_DIR`` always name dev mode's own chain and directory (``NETWORK_URL``
    as a JSON map when ``PROVIDER_PRIVATE_KEY`` is one).
    """
    env = dict(environ)
    for name, value in DEV_DEFAULTS.items():
        if not env.get(name, "").strip():
            env[name] = value
    if not any(env.get(n, "").strip()
               for n in ("TIDEGATE_ALLOW_PRIVATE_URLS", "ALLOW_NON_PUBLIC_IP")):
        env["TIDEGATE_ALLOW_PRIVATE_URLS"] = "true"
    json_keys = env["PROVIDER_PRIVATE_KEY"].strip().startswith("{")
    env["NETWORK_URL"] = json.dumps({str(DEV_CHAIN_ID): rpc_url}) if json_keys else rpc_url
    env["ADDRESS_FILE"] = str(address_file)
    env["TIDEGATE_DATA_DIR"] = str(data_dir)
    return env


def _ignored_settings(environ: Mapping[str, str]) -> list[str]:
    return [n for n in ("NETWORK_URL", "ADDRESS_FILE") if environ.get(n, "").strip()]


# -- start -----------------------------------------------------------------------------


def _notice(message: str) -> None:
    print(f"tidegate dev: {message}", file=sys.stderr, flush=True)


def devchain_installed() -> bool:
    """Whether the in-process chain can run: eth-tester and py-evm (the ``devchain`` extra)."""
    return all(importlib.util.find_spec(name) is not None for name in ("eth_tester", "eth"))


def _require_devchain(context: str) -> None:
    if not devchain_installed():
        raise DevModeError(
            f"{context}the in-process chain needs eth-tester and py-evm, which are not "
            "installed: `pip install 'tidegate[devchain]'` (in a checkout: "
            "`pip install -e '.[dev]'`), or use anvil (`make anvil-setup`, then --chain anvil)"
        )


def _find_node(choice: ChainChoice, anvil: Path | None) -> Path | None:
    """anvil's path, or None for the in-process chain (with a notice when it is a fallback)."""
    if choice == "embedded":
        _require_devchain("--chain embedded: ")
        return None
    binary = find_anvil(anvil)
    if binary is None:
        where = "--anvil/TIDEGATE_ANVIL, `anvil` on PATH, tools/anvil/node_modules"
        if choice == "anvil":
            raise DevModeError(
                f"anvil not found ({where}): run `make anvil-setup`, or use --chain embedded"
            )
        _require_devchain(f"anvil not found ({where}), and ")
        _notice(
            f"anvil not found ({where}): using the in-process chain instead; it is slower "
            "and cannot keep its state in --data-dir. Install anvil with `make anvil-setup`."
        )
    return binary


def _start_chain(
    binary: Path | None, directory: Path, persistent: bool, port: int,
    closers: list[Callable[[], None]],
) -> tuple[DevChainLike, Callable[[], None]]:
    """Start the chain; returns it and a way to stop it without saving its state."""
    if binary is not None:
        try:
            node = AnvilNode(
                binary, port=port, balance_eth=ANVIL_BALANCE_ETH,
                state_file=directory / STATE_FILE if persistent else None,
                state_interval=STATE_INTERVAL,
                log_file=directory / ANVIL_LOG if persistent else None,
            )
        except AnvilError as exc:
            raise DevModeError(str(exc)) from exc
        closers.append(node.close)
        return NodeChain(node.url), node.kill
    from tidegate.dev.devchain import DevChain  # py-evm: only for this chain
    from tidegate.dev.rpc_shim import start_rpc_server

    chain = DevChain()
    try:
        rpc = start_rpc_server(chain, port=port)
    except OSError as exc:
        raise DevModeError(f"cannot serve the chain's JSON-RPC on port {port}: {exc}") from exc
    closers.append(rpc.close)
    return chain, rpc.close


def start_dev_environment(
    data_dir: Path | None,
    rpc_port: int,
    *,
    environ: Mapping[str, str],
    chain: ChainChoice = "auto",
    fresh: bool = False,
    anvil: Path | None = None,
) -> DevEnvironment:
    """Chain + contracts + address file + demo origin + settings, consistent with the index.

    ``data_dir`` None: a fresh temporary directory, removed by ``close()``. ``environ``:
    the environment as ``tidegate serve`` would read it. ``anvil``: the anvil executable
    (default: :func:`~tidegate.dev.anvil_node.find_anvil`'s search). Raises
    :class:`DevModeError` (or ``ConfigurationError`` for a bad environment).

    Blocking, and it runs a short event loop of its own (to read the index): call it
    from a thread without a running loop (``run_dev`` uses ``asyncio.to_thread``), one
    that lives as long as the chain (see ``anvil_node._die_with_parent``).
    """
    persistent = data_dir is not None
    directory = (data_dir or Path(tempfile.mkdtemp(prefix="tidegate-dev-"))).expanduser()
    try:
        return _start_in(directory, persistent, rpc_port, chain, fresh, environ, anvil)
    except BaseException:
        if not persistent:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def _start_in(
    directory: Path, persistent: bool, rpc_port: int, chain: ChainChoice, fresh: bool,
    source: Mapping[str, str], anvil: Path | None,
) -> DevEnvironment:
    directory.mkdir(parents=True, exist_ok=True)
    port = rpc_port or free_port()
    rpc_url = f"http://127.0.0.1:{port}"
    address_file = directory / ADDRESS_FILE
    settings = Settings.from_env(
        dev_environ(source, rpc_url=rpc_url, address_file=address_file, data_dir=directory)
    )
    for name in _ignored_settings(source):
        _notice(f"{name} is ignored: dev mode runs its own chain ({rpc_url})")
    if fresh and persistent:
        forget(directory, settings)
    binary = _find_node(chain, anvil)
    backend: Literal["anvil", "embedded"] = "anvil" if binary is not None else "embedded"
    index = index_state(settings)
    manifest = (read_json(directory / MANIFEST_FILE) if persistent else None) or {}
    state_file = directory / STATE_FILE
    if not index.empty and not (persistent and backend == "anvil" and state_file.exists()):
        # Whatever starts now is a new chain: refuse before starting it.
        if not manifest:
            reason = f"{directory} holds an index from another chain"
        elif backend == "anvil":
            reason = f"{state_file} is missing: the chain the index was built from is gone"
        else:
            reason = ("the index belongs to a chain that is gone: the in-process chain "
                      "cannot keep its state (install anvil: `make anvil-setup`)")
        raise refusal(reason, directory, settings)

    closers: list[Callable[[], None]] = []
    if not persistent:  # runs last: after the chain and the origin have stopped
        closers.append(functools.partial(shutil.rmtree, directory, ignore_errors=True))
    try:
        dev_chain, discard = _start_chain(binary, directory, persistent, port, closers)
        w3 = dev_chain.w3
        fingerprint = chain_fingerprint(w3)
        recorded = manifest.get("addresses")
        same_chain = manifest.get("fingerprint") == fingerprint and isinstance(recorded, dict)
        missing = sorted(set(OceanAddresses.__required_keys__) - set(recorded or ()))
        reuse = same_chain and not missing and has_code(w3, manifest["addresses"].get("Ocean"))
        if reuse:
            head = int(w3.eth.block_number)
            if index.cursor is not None and index.cursor > head:
                discard()
                raise refusal(
                    f"the index has seen block {index.cursor} but the saved chain ends at "
                    f"block {head} (the last session was killed before anvil saved its state)",
                    directory, settings)
            assert isinstance(recorded, dict)
            dev_chain.addresses = OceanAddresses(**recorded)  # type: ignore[typeddict-item]
        else:
            if not index.empty:
                discard()
                if same_chain and missing:
                    reason = (f"the contracts in {state_file} were deployed by an older "
                              f"Tidegate (no {', '.join(missing)})")
                elif manifest:
                    reason = f"the chain in {state_file} is not the one the index was built from"
                else:
                    reason = f"{directory} holds an index from another chain"
                raise refusal(reason, directory, settings)
            dev_chain.deploy_ocean_contracts()
            assert dev_chain.addresses is not None
            manifest = {"fingerprint": fingerprint, "addresses": dict(dev_chain.addresses)}
        assert dev_chain.addresses is not None
        write_address_file(address_file, "development", DEV_CHAIN_ID, dict(dev_chain.addresses))
        files = directory / "files"
        files.mkdir(exist_ok=True)
        (files / "demo.csv").write_bytes(DEMO_CSV)
        origin, files_url = _serve_demo_files(files, manifest.get("demo"))
        closers.append(origin.server_close)
        closers.append(origin.shutdown)
    except BaseException:
        for closer in reversed(closers):
            with contextlib.suppress(Exception):
                closer()
        raise
    env = DevEnvironment(
        chain=dev_chain, backend=backend, rpc_url=rpc_url, address_file=address_file,
        data_dir=directory, persistent=persistent, reused_chain=reuse, files_url=files_url,
        settings=settings, manifest=manifest, _closers=closers,
    )
    env.save_manifest()
    return env


def _serve_demo_files(
    files: Path, demo: object
) -> tuple[http.server.ThreadingHTTPServer, str]:
    """The demo origin, on the port it had last time if possible (the DDO names it)."""
    if isinstance(demo, dict) and isinstance(demo.get("filesUrl"), str):
        port = demo["filesUrl"].rsplit(":", 1)[-1]
        if port.isdigit():
            with contextlib.suppress(OSError):
                return serve_directory(files, int(port))
    return serve_directory(files)


# -- demo asset ------------------------------------------------------------------------


def prepare_demo(env: DevEnvironment, provider_url: str) -> DemoAsset:
    """The demo dataset: the one from the last session if it still fits, else a new one.

    A new demo is published through the provider's ``/encrypt``, and the consumer gets
    OCEAN and datatokens. The recorded one is reused when the chain was kept and the
    provider (URL and address) and the demo origin are the same as then.
    """
    provider_address = httpx.get(provider_url + "/", timeout=10).json()[
        "providerAddresses"][str(DEV_CHAIN_ID)]
    recorded = env.manifest.get("demo")
    if (env.reused_chain and isinstance(recorded, dict)
            and recorded.get("providerUrl") == provider_url
            and recorded.get("providerAddress") == provider_address
            and recorded.get("filesUrl") == env.files_url
            and has_code(env.chain.w3, recorded.get("nft"))):
        return DemoAsset(str(recorded["did"]), str(recorded["nft"]),
                         str(recorded["datatoken"]), reused=True)
    asset = publish_demo(env, provider_url, provider_address)
    env.manifest["demo"] = {
        "did": asset.did, "nft": asset.nft_address, "datatoken": asset.datatoken_address,
        "providerUrl": provider_url, "providerAddress": provider_address,
        "filesUrl": env.files_url,
    }
    env.save_manifest()
    return asset


def publish_demo(env: DevEnvironment, provider_url: str, provider_address: str) -> DemoAsset:
    """Publish the demo dataset and give the consumer OCEAN and datatokens."""
    txs = Transactor(env.chain.w3)
    publisher = env.chain.accounts[PUBLISHER]
    consumer = env.chain.accounts[CONSUMER]
    assert env.chain.addresses is not None

    def encrypt(data: bytes) -> str:
        response = httpx.post(f"{provider_url}/api/services/encrypt",
                              params={"chainId": DEV_CHAIN_ID}, content=data,
                              headers={"Content-Type": "application/octet-stream"}, timeout=30)
        response.raise_for_status()
        return response.text

    asset = publish_asset(
        txs, dict(env.chain.addresses), publisher,
        AssetDescription(
            name="Tidegate demo temperatures",
            description="A tiny CSV served on loopback by tidegate dev.",
            files=[{"type": "url", "url": env.files_url + "/demo.csv", "method": "GET"}],
            services=("access", "compute"),
        ),
        provider_url=provider_url, provider_address=provider_address, encrypt=encrypt,
    )
    mint_datatoken(txs, publisher, asset.datatoken_address, consumer.address, CONSUMER_DATATOKENS)
    env.chain.mint_ocean(consumer.address, CONSUMER_OCEAN)
    return DemoAsset(asset.did, asset.nft_address, asset.datatoken_address, reused=False)


def _balances(env: DevEnvironment, demo: DemoAsset) -> str:
    assert env.chain.addresses is not None
    who = env.chain.accounts[CONSUMER].address
    try:
        dt = contract(env.chain.w3, "ERC20Template", demo.datatoken_address)
        ocean = contract(env.chain.w3, "OceanToken", env.chain.addresses["Ocean"])
        amounts = (dt.functions.balanceOf(who).call(), ocean.functions.balanceOf(who).call())
    except Exception:  # only for the summary
        return "public dev key"
    return (f"public dev key: {amounts[0] / ONE_TOKEN:g} datatokens, "
            f"{amounts[1] / ONE_TOKEN:g} OCEAN")


def _summary(env: DevEnvironment, provider_url: str, demo: DemoAsset) -> str:
    consumer = env.chain.private_key(CONSUMER)
    chain_kind = "anvil" if env.backend == "anvil" else "in-process chain"
    if not env.persistent:
        kept = "Press Ctrl-C to stop; nothing is kept."
    elif env.backend == "anvil":
        kept = f"Press Ctrl-C to stop; the chain and the index are kept in {env.data_dir}."
    else:
        kept = f"Press Ctrl-C to stop; the in-process chain is not kept ({env.data_dir})."
    return "\n".join([
        "Tidegate dev is running.",
        f"  provider URL    {provider_url}",
        f"  RPC URL         {env.rpc_url}  (chain id {env.chain.chain_id}, {chain_kind})",
        f"  address file    {env.address_file}",
        f"  demo DID        {demo.did}{'  (kept from the last session)' if demo.reused else ''}",
        f"  consumer        {env.chain.accounts[CONSUMER].address}",
        f"  consumer key    {consumer}  ({_balances(env, demo)})",
        f"  resolve it:     curl {provider_url}/api/aquarius/assets/ddo/{demo.did}",
        kept,
    ])


async def run_dev(
    host: str, port: int, rpc_port: int, data_dir: Path | None, *,
    environ: Mapping[str, str], chain: ChainChoice = "auto", fresh: bool = False,
    anvil: Path | None = None,
) -> None:
    """Run the whole dev stack until cancelled (or until the server stops)."""
    started = time.monotonic()
    env = await asyncio.to_thread(start_dev_environment, data_dir, rpc_port, environ=environ,
                                  chain=chain, fresh=fresh, anvil=anvil)
    try:
        try:
            configure_logging(env.settings.log_level, env.settings.log_format)
        except ValueError as exc:
            raise ConfigurationError(f"LOG_LEVEL: {exc}") from exc
        server = uvicorn.Server(uvicorn.Config(create_app(env.settings), host=host, port=port,
                                               log_config=None, access_log=False,
                                               http=HTTP_PROTOCOL))
        _keep_signals_for_shutdown(server)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving  # raises what stopped it (e.g. the port is taken)
                return
            await asyncio.sleep(0.05)
        provider_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        try:
            demo = await asyncio.to_thread(prepare_demo, env, provider_url)
        except Exception:
            if not server.should_exit:
                raise
            # Ctrl-C while the demo was being published: the server is already going
            # down, so the demo's calls to it fail; that is the stop asked for, not an error.
            await serving
            return
        if not await wait_until_resolved(provider_url, demo.did):
            _notice(f"{demo.did} does not resolve yet (is the indexer off, or AQUARIUS_URL set?)")
        print(_summary(env, provider_url, demo))
        print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
        await serving
    finally:
        await asyncio.to_thread(env.close)


def _keep_signals_for_shutdown(server: uvicorn.Server) -> None:
    """Make SIGINT/SIGTERM stop the server and nothing more, so ``run_dev`` cleans up.

    uvicorn shuts down gracefully on them, then restores the handlers it found and
    raises the signal again: with Python's defaults that kills the process (SIGTERM)
    or raises KeyboardInterrupt in the middle of the event loop (SIGINT), before anvil
    is stopped and has saved its state. These handlers just ask the server to exit.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


async def wait_until_resolved(provider_url: str, did: str, within: float = 15.0) -> bool:
    """Poll the Aquarius-compatible API until ``did`` resolves; False after ``within`` s."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"{provider_url}/api/aquarius/assets/ddo/{did}")
                if r.status_code == 200:
                    return True
            await asyncio.sleep(0.1)
    return False

