"""``tidegate publish``: publish an asset on any chain through any provider.

A composition root for the CLI (it builds its own clients): a synchronous Web3 on
the RPC, the contract addresses of that chain, and the provider's ``/encrypt``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from eth_account import Account
from web3 import Web3
from web3.exceptions import Web3Exception

from tidegate.chain.contracts import load_address_file, packaged_address_file_path
from tidegate.dev.ocean_txs import OceanTxError, Transactor
from tidegate.dev.publishing import AssetDescription, PublishedAsset, publish_asset


class PublishError(Exception):
    """Publishing failed; the message names the step, never a URL or key."""


def publish_from_description(
    description: AssetDescription, *, rpc_url: str, key: str, provider_url: str,
    address_file: Path | None,
) -> PublishedAsset:
    """Create the NFT and datatoken, have the provider encrypt, and set the metadata."""
    try:
        publisher = Account.from_key(key)
    except (ValueError, TypeError):
        raise PublishError("the key is not a private key") from None
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    try:
        chain_id = int(w3.eth.chain_id)
    except (OSError, Web3Exception) as exc:
        raise PublishError(f"the RPC did not answer ({type(exc).__name__})") from None
    try:
        addresses = load_address_file(address_file or packaged_address_file_path())[chain_id]
    except KeyError:
        raise PublishError(f"the address file has no contracts for chain {chain_id}") from None
    except (OSError, ValueError) as exc:
        raise PublishError(f"the address file cannot be read: {exc}") from None

    with httpx.Client(timeout=60) as http:
        try:
            root = http.get(provider_url + "/").json()
            provider_address = root["providerAddresses"][str(chain_id)]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            raise PublishError(
                f"the provider did not answer with an address for chain {chain_id}") from None

        def encrypt(data: bytes) -> str:
            response = http.post(provider_url + "/api/services/encrypt",
                                 params={"chainId": chain_id}, content=data,
                                 headers={"Content-Type": "application/octet-stream"})
            if response.status_code != 201:
                raise PublishError(f"the provider refused to encrypt ({response.status_code})")
            return response.text

        try:
            return publish_asset(Transactor(w3), addresses, publisher, description,
                                 provider_url=provider_url, provider_address=provider_address,
                                 encrypt=encrypt)
        except OceanTxError as exc:
            raise PublishError(f"a transaction failed: {exc}") from None
        except (httpx.HTTPError, OSError, Web3Exception) as exc:
            raise PublishError(f"a call failed ({type(exc).__name__})") from None
