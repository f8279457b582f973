"""Downloading a compute service's files: only a compute environment's consumer may.

This is how the operator-service's job pods fetch their inputs: ``/download`` signed by
the environment's ``consumerAddress`` wallet, with the compute order as transferTxId.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.api.access_helpers import download_params
from tests.api.test_compute import PYTHON, environment, initialize, pay, publish_dataset
from tests.chain_fixtures import ORIGIN_FILES, ChainHarness, wait_for_ddo
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, PROVIDER_KEY, sign_like_ocean_js
from tidegate.api.context import Services
from tidegate.auth.request_auth import SignedRequest
from tidegate.auth.signatures import download_message
from tidegate.commands.download import DownloadFile, download_file
from tidegate.dev.publishing import PublishedAsset
from tidegate.errors import BadRequestError
from tidegate.types import Nonce

RAW = {"meta": {"rawcode": "print('hello')", "container": PYTHON}}


async def compute_order(harness: ChainHarness,
                        client: httpx.AsyncClient) -> tuple[PublishedAsset, str, dict[str, Any]]:
    """A compute dataset ordered for the environment's consumer (what the user pays)."""
    dataset = publish_dataset(harness, allowRawAlgorithm=True)
    await wait_for_ddo(client, dataset.did)
    env = await environment(client)
    quote = (await initialize(client, dataset, RAW, env["id"])).json()["datasets"][0]
    return dataset, pay(harness, dataset, quote, env["consumerAddress"]), env


def services(client: httpx.AsyncClient) -> Services:
    svc: Services = client._transport.app.state.services  # type: ignore[attr-defined]
    return svc


def request(asset: PublishedAsset, tx: str, address: str, key: str) -> DownloadFile:
    nonce = str(time.time_ns())
    proof = SignedRequest(signer=address, message=download_message(asset.did),
                          nonce=Nonce.parse(nonce),
                          signature=sign_like_ocean_js(asset.did + nonce, key), auth_token=None)
    return DownloadFile(did=asset.did, service_id="0", transfer_tx=tx, file_index=0,
                        proof=proof)


async def test_the_compute_consumer_gets_the_inputs_others_do_not(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    dataset, tx, env = await compute_order(harness, chain_client)
    svc = services(chain_client)
    deps = {"authenticator": svc.authenticator, "resolver": svc.resolver,
            "chains": svc.chains, "orders": svc.orders, "storage": svc.storage}
    compute_wallet = env["consumerAddress"]  # the local environment: the provider's wallet

    stream = await download_file(request(dataset, tx, compute_wallet, PROVIDER_KEY),
                                 compute=svc.engine, **deps)
    try:
        assert b"".join([piece async for piece in stream.iter_bytes()]) == \
            ORIGIN_FILES["data.csv"]
    finally:
        await stream.aclose()

    # The user who paid is not a compute consumer; nor is anyone without an engine.
    for req, engine in ((request(dataset, tx, CONSUMER_ADDRESS, CONSUMER_KEY), svc.engine),
                        (request(dataset, tx, compute_wallet, PROVIDER_KEY), None)):
        with pytest.raises(BadRequestError) as caught:
            await download_file(req, compute=engine, **deps)
        assert caught.value.code == "not_access_service"


async def test_the_user_cannot_download_a_compute_service_over_http(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    dataset, tx, _ = await compute_order(harness, chain_client)
    r = await chain_client.get("/api/services/download", params=download_params(dataset, tx))
    assert (r.status_code, r.json()["code"]) == (400, "not_access_service")


async def test_the_compute_consumer_downloads_over_http(
        harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    from eth_account import Account

    dataset, tx, env = await compute_order(harness, chain_client)
    assert env["consumerAddress"] == Account.from_key(PROVIDER_KEY).address
    r = await chain_client.get("/api/services/download", params=download_params(
        dataset, tx, key=PROVIDER_KEY, address=env["consumerAddress"]))
    assert r.status_code == 200, r.text
    assert r.content == ORIGIN_FILES["data.csv"]
