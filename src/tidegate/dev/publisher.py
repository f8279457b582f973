"""``tidegate publish``: publish an asset on any chain through any provider.

A composition root for the CLI (it builds its own clients): a synchronous Web3 on
the RPC, the contract addresses of that chain, and the provider's ``/encrypt``.
Every failure is a :class:`PublishError` whose text names the step and what to check:
"could not be reached" (no answer at all) is distinct from "answered HTTP N". It names
a service by its origin only (scheme, host, port: a path or query may carry an API
key) and never a key.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3Exception

from tidegate.chain.contracts import load_address_file, packaged_address_file_path
from tidegate.dev.ocean_txs import OceanTxError, Transactor
from tidegate.dev.publishing import (
    TOKEN_DECIMALS,
    AssetDescription,
    PublishedAsset,
    publish_asset,
)

_ERROR_TEXT_LIMIT = 200
# A Python bytes literal (web3 and eth-tester put raw addresses and data in their error
# texts as b'\x12...'): shown as 0x hex instead.
_BYTES_LITERAL = re.compile(r"""b(['"])((?:\\.|(?!\1).)*)\1""")


class PublishError(Exception):
    """Publishing failed; the message names the step, never a key or a URL's path."""


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, what a message may name (no path, query, user)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme or 'http'}://{host}{port}"


def readable(text: str) -> str:
    """An error text on one line, bytes literals as ``0x`` hex, at most 200 characters."""
    def hexed(match: re.Match[str]) -> str:
        try:
            raw = match.group(2).encode("latin-1").decode("unicode_escape").encode("latin-1")
        except (UnicodeError, ValueError):
            return "0x…"
        return "0x" + raw.hex()

    flat = " ".join(_BYTES_LITERAL.sub(hexed, text).split())
    return flat if len(flat) <= _ERROR_TEXT_LIMIT else flat[: _ERROR_TEXT_LIMIT - 1] + "…"


def _provider_error(response: httpx.Response) -> str:
    """The provider's own words from an error answer (its ``error`` field), if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return ": " + readable(body["error"])
    return ""


class ProviderClient:
    """The two calls publishing makes to a provider: ``GET /`` and ``POST /encrypt``."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url
        self.origin = origin(url)

    def _unreachable(self, exc: httpx.TransportError) -> PublishError:
        return PublishError(f"the provider at {self.origin} could not be reached "
                            f"({type(exc).__name__}); is --provider-url right and the "
                            f"provider running?")

    def provider_address(self, chain_id: int) -> str:
        """The provider's address for ``chain_id`` from its root document."""
        try:
            response = self.http.get(self.url + "/")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code != 200:
            raise PublishError(f"the provider at {self.origin} answered GET / with HTTP "
                               f"{response.status_code}{_provider_error(response)}")
        try:
            root: Any = response.json()
        except ValueError:
            root = None
        addresses = root.get("providerAddresses") if isinstance(root, dict) else None
        if not isinstance(addresses, dict):
            raise PublishError(f"the provider at {self.origin} answered GET / without "
                               f"providerAddresses: is --provider-url an Ocean provider?")
        address = addresses.get(str(chain_id))
        if not isinstance(address, str) or not Web3.is_address(address):
            served = ", ".join(sorted(str(k) for k in addresses)) or "none"
            raise PublishError(f"the provider at {self.origin} does not serve chain "
                               f"{chain_id} (its chains: {served})")
        return Web3.to_checksum_address(address)

    def encrypt(self, chain_id: int, data: bytes) -> str:
        """The provider's ``/encrypt`` answer (``0x`` hex) for ``data``."""
        try:
            response = self.http.post(self.url + "/api/services/encrypt",
                                      params={"chainId": chain_id}, content=data,
                                      headers={"Content-Type": "application/octet-stream"})
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        text = response.text.strip()
        if response.status_code not in (200, 201):
            raise PublishError(f"the provider at {self.origin} refused to encrypt (HTTP "
                               f"{response.status_code}{_provider_error(response)})")
        if not re.fullmatch(r"0x(?:[0-9a-fA-F]{2})+", text):
            raise PublishError(f"the provider at {self.origin} answered /encrypt with "
                               f"something that is not 0x hex")
        return text


def _connect_chain(rpc_url: str) -> tuple[Web3, int]:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    try:
        return w3, int(w3.eth.chain_id)
    except (OSError, Web3Exception, ValueError) as exc:
        # The type only: a connection error's text carries the whole URL.
        raise PublishError(f"the RPC at {origin(rpc_url)} could not be reached or is not "
                           f"a JSON-RPC node ({type(exc).__name__})") from None


def _addresses(address_file: Path | None, chain_id: int) -> dict[str, object]:
    path = address_file or packaged_address_file_path()
    try:
        by_chain = load_address_file(path)
    except (OSError, ValueError) as exc:
        raise PublishError(f"the address file {path} cannot be read: {readable(str(exc))}"
                           ) from None
    if chain_id not in by_chain:
        known = ", ".join(str(c) for c in sorted(by_chain)) or "none"
        raise PublishError(f"the address file {path} has no contracts for chain {chain_id} "
                           f"(the RPC's chain; the file has: {known})")
    return dict(by_chain[chain_id])


def publish_from_description(
    description: AssetDescription, *, rpc_url: str, key: str, provider_url: str,
    address_file: Path | None, mint: int = 0,
) -> PublishedAsset:
    """Create the NFT and datatoken, have the provider encrypt, set the metadata, and
    mint ``mint`` base units of datatokens to the publisher."""
    try:
        publisher: LocalAccount = Account.from_key(key)
    except (ValueError, TypeError):
        raise PublishError("--key is not a private key (0x and 64 hex digits)") from None
    w3, chain_id = _connect_chain(rpc_url)
    addresses = _addresses(address_file, chain_id)
    try:
        if int(w3.eth.get_balance(publisher.address)) == 0:
            raise PublishError(f"the publisher {publisher.address} has no native coin on "
                               f"chain {chain_id} to pay for gas")
    except (OSError, Web3Exception) as exc:
        raise PublishError(f"the RPC failed to give the publisher's balance "
                           f"({type(exc).__name__})") from None

    with httpx.Client(timeout=60) as http:
        provider = ProviderClient(http, provider_url)
        provider_address = provider.provider_address(chain_id)
        try:
            return publish_asset(Transactor(w3), addresses, publisher, description,
                                 provider_url=provider_url, provider_address=provider_address,
                                 encrypt=lambda data: provider.encrypt(chain_id, data),
                                 mint=mint)
        except OceanTxError as exc:
            raise PublishError(f"a transaction failed: {readable(str(exc))}") from None
        except (OSError, Web3Exception) as exc:
            raise PublishError(f"the RPC failed during publishing ({type(exc).__name__})"
                               ) from None


def tokens(units: int) -> str:
    """Base units as a token amount, without trailing zeros (``2500000000000000000`` → 2.5)."""
    return format(Decimal(units).scaleb(-TOKEN_DECIMALS).normalize(), "f")


def published_fields(asset: PublishedAsset) -> dict[str, Any]:
    """``--json``: every id of the publication (``null`` when not applicable)."""
    return {
        "did": asset.did, "chainId": asset.chain_id, "pricing": asset.pricing,
        "nftAddress": asset.nft_address, "datatokenAddress": asset.datatoken_address,
        "exchangeId": asset.exchange_id, "exchangeAddress": asset.exchange,
        "dispenserAddress": asset.dispenser, "createTx": asset.create_tx,
        "metadataTx": asset.metadata_tx, "mintTx": asset.mint_tx,
        "minted": tokens(asset.minted) if asset.minted else None,
    }


def published_text(asset: PublishedAsset, provider_url: str, publisher: str) -> str:
    """The human summary: one id per line, labelled."""
    rows = [("DID", asset.did), ("data NFT", asset.nft_address),
            ("datatoken", asset.datatoken_address)]
    if asset.exchange_id:
        rows.append(("exchange id", f"{asset.exchange_id}"))
        rows.append(("exchange", f"{asset.exchange} (FixedRateExchange)"))
    if asset.dispenser:
        rows.append(("dispenser", asset.dispenser))
    if asset.mint_tx:
        rows.append(("minted", f"{tokens(asset.minted)} datatokens to {publisher} "
                               f"(tx {asset.mint_tx})"))
    rows += [("create tx", asset.create_tx), ("metadata tx", asset.metadata_tx),
             ("resolve it", f"curl {provider_url}/api/aquarius/assets/ddo/{asset.did}"
                            "  (Tidegate, once indexed)")]
    width = max(len(label) for label, _ in rows) + 2
    head = f"Published on chain {asset.chain_id} ({asset.pricing} pricing):"
    return "\n".join([head, *(f"  {label.ljust(width)}{value}" for label, value in rows)])


def dumps(asset: PublishedAsset) -> str:
    return json.dumps(published_fields(asset), indent=2)
