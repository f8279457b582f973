"""anvil (Foundry, from npm) as the test chain: ``TIDEGATE_TEST_CHAIN=anvil``.

``make anvil-setup`` installs ``@foundry-rs/anvil`` into ``tools/anvil/node_modules``.
The ELF binary of the platform package is started directly (the ``.bin/anvil`` node
wrapper is the fallback), on a free loopback port with chain id 8996 and the barge
mnemonic, so accounts and deployed addresses equal the in-process chain's.

:class:`AnvilChain` offers what the tests use of ``DevChain`` (accounts, ``w3``,
snapshots, OCEAN minting, block time) over plain JSON-RPC.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from tidegate.dev import deploy
from tidegate.dev.barge import BARGE_HD_PATH, BARGE_MNEMONIC, DEV_CHAIN_ID
from tidegate.dev.deploy import OceanAddresses

REPO = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO / "tools" / "anvil" / "node_modules"
ANVIL_VERSION = "1.7.1"
_START_TIMEOUT = 15.0


def find_anvil() -> Path | None:
    """The anvil executable installed by ``make anvil-setup``, if any.

    ``TIDEGATE_ANVIL`` may name another binary. Otherwise the platform package's ELF
    binary comes first: it needs no node process, and stopping its PID stops anvil.
    """
    override = os.environ.get("TIDEGATE_ANVIL")
    if override:
        return Path(override)
    for candidate in sorted(NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return candidate
    wrapper = NODE_MODULES / ".bin" / "anvil"
    return wrapper if wrapper.exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnvilNode:
    """A running anvil process on 127.0.0.1; ``close()`` stops it by its PID."""

    def __init__(self, binary: Path, *, accounts: int = 10, mnemonic: str = BARGE_MNEMONIC) -> None:
        # anvil's own output, for failure reports; closed by close().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        last_error = "not started"
        for _attempt in range(3):  # another process may take the port in between
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.process = subprocess.Popen(
                [
                    str(binary),
                    "--host", "127.0.0.1",
                    "--port", str(self.port),
                    "--chain-id", str(DEV_CHAIN_ID),
                    "--mnemonic", mnemonic,
                    "--accounts", str(accounts),
                    "--balance", "1000000",
                    "--silent",
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            last_error = self._wait_until_ready()
            if not last_error:
                return
            self._stop()
        self._log.seek(0)
        output = self._log.read().decode(errors="replace")[-2000:]
        self._log.close()
        raise RuntimeError(f"anvil ({binary}) did not start: {last_error}\n{output}")

    def _wait_until_ready(self) -> str:
        """'' once ``eth_chainId`` answers 8996; otherwise why not."""
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 1}))
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"exited with status {self.process.returncode}"
            try:
                chain_id = int(w3.eth.chain_id)
            except Exception:  # not listening yet
                time.sleep(0.02)
                continue
            if chain_id != DEV_CHAIN_ID:
                return f"it answers chain id {chain_id}"
            return ""
        return f"no answer within {_START_TIMEOUT} s"

    def close(self) -> None:
        """Stop anvil (SIGTERM, then SIGKILL). Idempotent."""
        self._stop()
        self._log.close()

    def _stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AnvilChain:
    """The ``DevChain`` facade over an anvil node's JSON-RPC.

    Accounts are derived locally from the mnemonic (the same ones anvil funds), and
    every transaction is signed locally, as Tidegate and its clients do.
    """

    def __init__(self, url: str, *, num_accounts: int = 10, mnemonic: str = BARGE_MNEMONIC) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        seed = seed_from_mnemonic(mnemonic, "")
        self.accounts: list[LocalAccount] = [
            Account.from_key(key_from_seed(seed, f"{BARGE_HD_PATH}/{i}"))
            for i in range(num_accounts)
        ]
        self.addresses: OceanAddresses | None = None

    @property
    def chain_id(self) -> int:
        return DEV_CHAIN_ID

    def private_key(self, index: int) -> HexStr:
        """The ``0x`` hex private key of mnemonic account ``index``."""
        return HexStr("0x" + bytes(self.accounts[index].key).hex())

    def _rpc(self, method: str, *params: Any) -> Any:
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response["result"]

    def snapshot(self) -> int:
        """``evm_snapshot``: record the current state."""
        return int(self._rpc("evm_snapshot"), 16)

    def revert(self, snapshot_id: int) -> None:
        """``evm_revert``; raises ``KeyError`` for an unknown (or used) snapshot id."""
        if self._rpc("evm_revert", hex(snapshot_id)) is not True:
            raise KeyError(snapshot_id)

    def mine(self, timestamp: int | None = None) -> None:
        """Mine one empty block, at ``timestamp`` if given (after the latest block's)."""
        if timestamp is None:
            self._rpc("evm_mine")
            return
        if timestamp <= self.latest_timestamp():
            raise ValueError("a new block's timestamp must be after the latest block's")
        self._rpc("evm_mine", timestamp)

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def deploy_ocean_contracts(self, deployer_index: int = 0) -> OceanAddresses:
        """Deploy the Ocean contracts with ``tidegate.dev.deploy``, once."""
        if self.addresses is not None:
            raise RuntimeError("the Ocean contracts are already deployed on this chain")
        self.addresses = deploy.deploy_ocean_contracts(self.w3, self.accounts[deployer_index])
        return self.addresses

    def mint_ocean(self, to: str, amount_wei: int, owner_index: int = 0) -> None:
        if self.addresses is None:
            raise RuntimeError("deploy_ocean_contracts() first")
        deploy.mint_ocean(
            self.w3, self.accounts[owner_index], self.addresses["Ocean"], to, amount_wei
        )
