"""The benchmark's chain: anvil (preferred) or the in-process chain in its own process.

Deploys the Ocean contracts, publishes the benchmark's assets (files encrypted to the
provider key, the way ``/encrypt`` would), and orders them for many consumer wallets.
All orders are paid by one funded account for a per-wallet ``consumer``, so the
wallets need no ETH: the download's signer must be the order's consumer or payer.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import coincurve
from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from bench.procs import Proc, free_port
from tidegate.chain.contracts import write_address_file
from tidegate.crypto import ecies
from tidegate.dev import anvil_node, deploy
from tidegate.dev.barge import BARGE_HD_PATH, BARGE_MNEMONIC, DEV_CHAIN_ID
from tidegate.dev.ocean_txs import ONE_TOKEN, Transactor, mint_datatoken, start_order
from tidegate.dev.publishing import AssetDescription, PublishedAsset, publish_asset
from tidegate.fees.provider_fees import build_provider_data, sign_provider_fee

REPO = Path(__file__).resolve().parent.parent
# The public barge development provider key (the same one the test suite uses).
PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
PROVIDER_ADDRESS = Account.from_key(PROVIDER_KEY).address


def find_anvil() -> Path | None:
    """``TIDEGATE_ANVIL``, anvil on ``PATH``, or the one ``make anvil-setup`` installs."""
    return anvil_node.find_anvil(os.environ.get("TIDEGATE_ANVIL"), roots=[REPO])


def start_chain(kind: str) -> tuple[Proc, str, str]:
    """Start ``anvil`` or ``devchain``; returns the process, RPC URL and a label."""
    port = free_port()
    if kind == "anvil":
        binary = find_anvil()
        if binary is None:
            raise RuntimeError("anvil is not installed: run `make anvil-setup`")
        proc = Proc("anvil", [str(binary), "--host", "127.0.0.1", "--port", str(port),
                              "--chain-id", str(DEV_CHAIN_ID), "--mnemonic", BARGE_MNEMONIC,
                              "--accounts", "10", "--balance", "1000000", "--silent"])
        version = "anvil " + _anvil_version(binary)
    else:
        proc = Proc("devchain", [sys.executable, "-m", "bench.devchain_node", str(port)],
                    cwd=REPO)
        version = "in-process eth-tester chain (py-evm) behind Tidegate's JSON-RPC shim"
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{kind} exited:\n{proc.output()}")
        try:
            if int(w3.eth.chain_id) == DEV_CHAIN_ID:
                return proc, url, version
        except Exception:  # not listening yet
            time.sleep(0.05)
    raise RuntimeError(f"{kind} did not start:\n{proc.output()}")


def _anvil_version(binary: Path) -> str:
    import subprocess

    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                         check=False).stdout
    return out.split("\n")[0].replace("anvil Version:", "").strip() or "?"


def barge_account(index: int) -> LocalAccount:
    seed = seed_from_mnemonic(BARGE_MNEMONIC, "")
    return Account.from_key(key_from_seed(seed, f"{BARGE_HD_PATH}/{index}"))


class Wallet:
    """A consumer wallet that signs download requests with strictly increasing nonces."""

    def __init__(self, label: str) -> None:
        self.key = keccak(text=f"tidegate-bench-wallet-{label}")
        self._signer = coincurve.PrivateKey(self.key)
        self.address = Account.from_key(self.key).address
        self.nonce = 0
        self.orders: dict[str, str] = {}  # did -> order tx

    def sign(self, message: str) -> str:
        digest = keccak(text=message)
        prefixed = keccak(b"\x19Ethereum Signed Message:\n32" + digest)
        raw = self._signer.sign_recoverable(prefixed, hasher=None)
        return "0x" + raw[:64].hex() + f"{raw[64] + 27:02x}"

    def download_path(self, asset: PublishedAsset) -> str:
        """A fresh signed ``/api/services/download`` path and query for ``asset``."""
        self.nonce += 1
        nonce = str(self.nonce)
        return "/api/services/download?" + urlencode({
            "documentId": asset.did, "serviceId": "0", "consumerAddress": self.address,
            "transferTxId": self.orders[asset.did], "fileIndex": "0", "nonce": nonce,
            "signature": self.sign(asset.did + nonce)})


@dataclass
class BenchChain:
    url: str
    label: str
    w3: Web3
    addresses: dict[str, Any]
    address_file: Path
    txs: Transactor

    def publish(self, name: str, file_url: str, provider_url: str) -> PublishedAsset:
        public = ecies.public_key_hex(PROVIDER_KEY)

        def encrypt(data: bytes) -> str:
            return "0x" + ecies.encrypt(public, data).hex()

        return publish_asset(
            self.txs, self.addresses, barge_account(1),
            AssetDescription(name=name, files=[{"type": "url", "url": file_url,
                                                "method": "GET"}]),
            provider_url=provider_url, provider_address=PROVIDER_ADDRESS, encrypt=encrypt)

    def order_for(self, asset: PublishedAsset, wallets: list[Wallet]) -> None:
        """One ``startOrder`` per wallet (consumer = wallet, paid by barge account 2)."""
        payer = barge_account(2)
        mint_datatoken(self.txs, barge_account(1), asset.datatoken_address, payer.address,
                       len(wallets) * ONE_TOKEN)
        fee = sign_provider_fee(
            PROVIDER_KEY, provider_data=build_provider_data(None, time.time(),
                                                            asset.datatoken_address, "0"),
            fee_token=self.addresses["Ocean"], fee_amount=0, valid_until=0)
        for wallet in wallets:
            wallet.orders[asset.did] = str(start_order(
                self.txs, payer, asset.datatoken_address, wallet.address, 0, fee))


def deploy_chain(url: str, label: str, workdir: Path) -> BenchChain:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    addresses = dict(deploy.deploy_ocean_contracts(w3, barge_account(0)))
    address_file = workdir / "address.json"
    write_address_file(address_file, "development", DEV_CHAIN_ID, addresses)
    return BenchChain(url, label, w3, addresses, address_file, Transactor(w3))
