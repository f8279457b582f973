"""Compute-to-data over HTTP on the dev chain with the local sandboxed engine."""

import asyncio
import shutil
import time
from typing import Any

import httpx
import pytest

from tests.chain_fixtures import ChainHarness, wait_for_ddo
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, PROVIDER_ADDRESS, sign_like_ocean_js
from tidegate.dev import ocean_txs
from tidegate.dev.publishing import PublishedAsset
from tidegate.fees.provider_fees import ProviderFee

CHECKSUM = "sha256:" + "ab" * 32
PYTHON = {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11", "checksum": CHECKSUM}
NODE = {"entrypoint": "node $ALGO", "image": "node", "tag": "20", "checksum": CHECKSUM}


def publish_dataset(harness: ChainHarness, **compute: Any) -> PublishedAsset:
    rules = {"allowRawAlgorithm": False, "allowNetworkAccess": False,
             "publisherTrustedAlgorithmPublishers": [], "publisherTrustedAlgorithms": []}
    rules.update(compute)
    asset = harness.publish(name="compute dataset", services=("compute",), compute=rules)
    harness.give_datatokens(asset)
    return asset


def publish_algorithm(harness: ChainHarness, script: str = "count.py",
                      container: dict[str, str] | None = None) -> PublishedAsset:
    asset = harness.publish(
        name="algorithm", type="algorithm", services=("access",),
        files=[{"type": "url", "url": f"{harness.origin}/{script}"}],
        algorithm={"language": "python", "version": "1", "container": container or PYTHON})
    harness.give_datatokens(asset)
    return asset


async def environment(client: httpx.AsyncClient) -> dict[str, Any]:
    envs = (await client.get("/api/services/computeEnvironments")).json()
    return envs["8996"][0]


async def initialize(client: httpx.AsyncClient, dataset: PublishedAsset,
                     algorithm: dict[str, Any], env_id: str) -> httpx.Response:
    return await client.post("/api/services/initializeCompute", json={
        "datasets": [{"documentId": dataset.did, "serviceId": "0"}],
        "algorithm": algorithm,
        "compute": {"env": env_id, "validUntil": int(time.time()) + 600},
        "consumerAddress": CONSUMER_ADDRESS})


def pay(harness: ChainHarness, asset: PublishedAsset, quote: dict[str, Any],
        compute_address: str) -> str:
    fee = ProviderFee.from_json(quote["providerFee"])
    return str(ocean_txs.start_order(harness.txs, harness.consumer, asset.datatoken_address,
                                     compute_address, 0, fee))


async def start(client: httpx.AsyncClient, dataset: PublishedAsset, dataset_tx: str,
                algorithm: dict[str, Any], env_id: str) -> httpx.Response:
    nonce = str(time.time_ns())
    return await client.post("/api/services/compute", json={
        "dataset": {"documentId": dataset.did, "serviceId": "0", "transferTxId": dataset_tx},
        "algorithm": algorithm, "environment": env_id, "consumerAddress": CONSUMER_ADDRESS,
        "nonce": nonce, "additionalInputs": [],
        "signature": sign_like_ocean_js(CONSUMER_ADDRESS + dataset.did + nonce, CONSUMER_KEY)})


async def wait_done(client: httpx.AsyncClient, job_id: str, limit: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        jobs = (await client.get("/api/services/compute", params={
            "consumerAddress": CONSUMER_ADDRESS, "jobId": job_id})).json()
        if jobs and jobs[0]["status"] in (31, 32, 70):
            return dict(jobs[0])
        await asyncio.sleep(0.2)
    raise AssertionError("job did not finish")


async def result(client: httpx.AsyncClient, job_id: str, index: int) -> httpx.Response:
    nonce = str(time.time_ns())
    return await client.get("/api/services/computeResult", params={
        "consumerAddress": CONSUMER_ADDRESS, "jobId": job_id, "index": str(index),
        "nonce": nonce, "signature": sign_like_ocean_js(
            CONSUMER_ADDRESS + job_id + str(index) + nonce, CONSUMER_KEY)})


async def test_environments_keyed_by_chain(chain_client: httpx.AsyncClient) -> None:
    env = await environment(chain_client)
    assert env["priceMin"] == 0 and env["free"] is True
    assert env["consumerAddress"] == PROVIDER_ADDRESS
    assert env["maxJobDuration"] > 0


@pytest.mark.parametrize(("script", "container"), [("count.py", PYTHON), ("count.js", NODE)])
async def test_published_algorithm_end_to_end(harness: ChainHarness,
                                              chain_client: httpx.AsyncClient,
                                              script: str, container: dict[str, str]) -> None:
    if container is NODE and shutil.which("node") is None:
        pytest.skip("node is not installed")
    dataset = publish_dataset(harness)
    algo = publish_algorithm(harness, script, container)
    await wait_for_ddo(chain_client, dataset.did)
    await wait_for_ddo(chain_client, algo.did)
    env = await environment(chain_client)
    algorithm = {"documentId": algo.did, "serviceId": "0"}
    r = await initialize(chain_client, dataset, algorithm, env["id"])
    assert r.status_code == 200, r.text
    quotes = r.json()
    dataset_tx = pay(harness, dataset, quotes["datasets"][0], env["consumerAddress"])
    algo_tx = pay(harness, algo, quotes["algorithm"], env["consumerAddress"])
    r = await start(chain_client, dataset, dataset_tx,
                    {**algorithm, "transferTxId": algo_tx}, env["id"])
    assert r.status_code == 200, r.text
    job = r.json()[0]
    done = await wait_done(chain_client, job["jobId"])
    assert done["status"] == 70, done
    kinds = {res["type"]: res for res in done["results"]}
    log = await result(chain_client, job["jobId"], kinds["algorithmLog"]["index"])
    assert "output" in kinds, (done, log.content)
    out = await result(chain_client, job["jobId"], kinds["output"]["index"])
    assert (out.status_code, out.content) == (200, b"lines=3")
    assert b"counted" in log.content


async def test_raw_algorithm_stop_and_delete(harness: ChainHarness,
                                             chain_client: httpx.AsyncClient) -> None:
    dataset = publish_dataset(harness, allowRawAlgorithm=True)
    await wait_for_ddo(chain_client, dataset.did)
    env = await environment(chain_client)
    raw = {"meta": {"rawcode": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
                    "container": PYTHON}}
    quotes = (await initialize(chain_client, dataset, raw, env["id"])).json()
    assert "algorithm" not in quotes  # raw algorithms are not ordered
    tx = pay(harness, dataset, quotes["datasets"][0], env["consumerAddress"])
    job = (await start(chain_client, dataset, tx, raw, env["id"])).json()[0]
    await asyncio.sleep(1.0)
    nonce = str(time.time_ns())
    r = await chain_client.put("/api/services/compute", params={
        "consumerAddress": CONSUMER_ADDRESS, "jobId": job["jobId"], "documentId": dataset.did,
        "nonce": nonce, "signature": sign_like_ocean_js(
            CONSUMER_ADDRESS + job["jobId"] + dataset.did + nonce, CONSUMER_KEY)})
    assert r.status_code == 200, r.text
    done = await wait_done(chain_client, job["jobId"])
    assert done["status"] == 70 and "stop" in done["statusText"].lower()
    # The log is always result 0 (ocean.py reads computeResult index 0 of a stopped job).
    assert done["results"][0]["type"] == "algorithmLog"

    async def delete(job_id: str) -> httpx.Response:
        nonce = str(time.time_ns())
        return await chain_client.request("DELETE", "/api/services/compute", params={
            "consumerAddress": CONSUMER_ADDRESS, "jobId": job_id, "nonce": nonce,
            "signature": sign_like_ocean_js(CONSUMER_ADDRESS + job_id + nonce, CONSUMER_KEY)})

    for _ in range(2):  # a repeated delete finds the tombstone, as the reference's
        r = await delete(job["jobId"])
        assert r.status_code == 200, r.text
        [deleted] = r.json()
        assert (deleted["jobId"], deleted["removed"], deleted["results"]) == (
            job["jobId"], 1, [])
    [status] = (await chain_client.get("/api/services/compute", params={
        "consumerAddress": CONSUMER_ADDRESS, "jobId": job["jobId"]})).json()
    assert status["removed"] == 1
    # A job that never existed: a 404 error, not `[]` (ocean.py indexes element 0).
    r = await delete("no-such-job")
    assert (r.status_code, r.json()["code"]) == (404, "job_not_found")


async def test_refusals(harness: ChainHarness, chain_client: httpx.AsyncClient) -> None:
    dataset = publish_dataset(harness)  # no raw code; trusts nobody in particular
    trusted = publish_dataset(harness, publisherTrustedAlgorithms=[
        {"did": "did:op:" + "1" * 64, "filesChecksum": "", "containerSectionChecksum": ""}])
    other_publisher = publish_dataset(
        harness, publisherTrustedAlgorithmPublishers=["0x" + "12" * 20])
    unreadable = publish_dataset(harness, publisherTrustedAlgorithms=[{"filesChecksum": ""}])
    algo = publish_algorithm(harness)
    odd_image = publish_algorithm(harness, container={**PYTHON, "image": "ruby"})
    for asset in (dataset, trusted, other_publisher, unreadable, algo, odd_image):
        await wait_for_ddo(chain_client, asset.did)
    env = await environment(chain_client)
    raw = {"meta": {"rawcode": "print(1)", "container": PYTHON}}
    by_did = {"documentId": algo.did, "serviceId": "0"}
    cases = [
        (dataset, raw, env["id"], "no_raw_algo_allowed"),
        (trusted, by_did, env["id"], "not_trusted_algo"),
        (other_publisher, by_did, env["id"], "not_trusted_algo_publisher"),
        (unreadable, by_did, env["id"], "no_publisherTrustedAlgorithms"),
        (dataset, by_did, "no-such-env", "unknown_environment"),
        (dataset, {"documentId": odd_image.did, "serviceId": "0"}, env["id"],
         "unsupported_image"),
    ]
    for asset, algorithm, env_id, code in cases:
        r = await initialize(chain_client, asset, algorithm, env_id)
        assert (r.status_code, r.json()["code"]) == (400, code), code
        if code not in ("unknown_environment", "unsupported_image"):  # ours, not the reference's
            # ocean.py surfaces only `error`: the reference's code must be in its text.
            assert code in r.json()["error"], r.json()

    quotes = (await initialize(chain_client, dataset, by_did, env["id"])).json()
    # Ordered for the consumer itself instead of the compute address: refused.
    wrong = pay(harness, dataset, quotes["datasets"][0], CONSUMER_ADDRESS)
    algo_tx = pay(harness, algo, quotes["algorithm"], env["consumerAddress"])
    r = await start(chain_client, dataset, wrong, {**by_did, "transferTxId": algo_tx}, env["id"])
    assert (r.status_code, r.json()["code"]) == (400, "order_invalid")


async def test_paid_environment_fees_must_cover_the_duration(
        harness: ChainHarness, chain_settings: Any) -> None:
    import json

    from tests.conftest import start_app
    from tests.helpers import PROVIDER_KEY
    from tidegate.fees.provider_fees import build_provider_data, sign_provider_fee

    settings = chain_settings(TIDEGATE_COMPUTE_ENVIRONMENTS=json.dumps(
        [{"id": "paid", "chainId": 8996, "priceMin": 1}]))
    dataset = publish_dataset(harness, allowRawAlgorithm=True)
    raw = {"meta": {"rawcode": "print('paid run')", "container": PYTHON}}
    async for client in start_app(settings):
        await wait_for_ddo(client, dataset.did)
        env = await environment(client)
        assert env["id"] == "paid" and env["priceMin"] == 1 and env["free"] is False
        quote = (await initialize(client, dataset, raw, "paid")).json()["datasets"][0]
        # 600 s at 1 OCEAN/min, 18 decimals, give or take the seconds of the test.
        assert 9 * 10**18 < int(quote["providerFee"]["providerFeeAmount"]) <= 10 * 10**18
        # A fee the provider signed for far less than the duration: refused.
        cheap = sign_provider_fee(
            PROVIDER_KEY, provider_data=build_provider_data(
                "paid", time.time(), dataset.datatoken_address, "0"),
            fee_token=harness.addresses["Ocean"], fee_amount=1,
            valid_until=int(time.time()) + 600)
        cheap_tx = str(ocean_txs.start_order(harness.txs, harness.consumer,
                                             dataset.datatoken_address, env["consumerAddress"],
                                             0, cheap))
        r = await start(client, dataset, cheap_tx, raw, "paid")
        assert (r.status_code, r.json()["code"]) == (400, "fees_not_paid")
        paid_tx = pay(harness, dataset, quote, env["consumerAddress"])
        r = await start(client, dataset, paid_tx, raw, "paid")
        assert r.status_code == 200, r.text
        assert (await wait_done(client, r.json()[0]["jobId"]))["status"] == 70
