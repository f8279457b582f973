"""Client-side steps of the access flow, done the way ocean.py / ocean.js do them."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js
from tidegate.dev import ocean_txs
from tidegate.dev.publishing import PublishedAsset
from tidegate.fees.provider_fees import ProviderFee


async def initialize(client: httpx.AsyncClient, asset: PublishedAsset, service_id: str = "0",
                     **extra: Any) -> httpx.Response:
    return await client.get("/api/services/initialize", params={
        "documentId": asset.did, "serviceId": service_id, "consumerAddress": CONSUMER_ADDRESS,
        **extra})


async def order(client: httpx.AsyncClient, harness: ChainHarness, asset: PublishedAsset,
                service_index: int = 0) -> str:
    """initialize, then startOrder with the quoted fee (what pay_for_access_service does)."""
    await wait_for_ddo(client, asset.did)
    service_id = asset.ddo["services"][service_index]["id"]
    quote = (await initialize(client, asset, service_id)).json()
    fee = ProviderFee.from_json(quote["providerFee"])
    return str(ocean_txs.start_order(harness.txs, harness.consumer, asset.datatoken_address,
                                     CONSUMER_ADDRESS, service_index, fee))


def download_params(asset: PublishedAsset, tx: str, file_index: int = 0,
                    service_id: str = "0", key: str = CONSUMER_KEY,
                    address: str = CONSUMER_ADDRESS) -> dict[str, str]:
    nonce = str(time.time_ns())
    return {"documentId": asset.did, "serviceId": service_id, "consumerAddress": address,
            "transferTxId": tx, "fileIndex": str(file_index), "nonce": nonce,
            "signature": sign_like_ocean_js(asset.did + nonce, key)}
