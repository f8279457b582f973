"""Requests exactly as ocean.js 8.6.2 builds them over HTTP (src/services/providers/
HttpProvider.ts, BaseProvider.ts, utils/SignatureUtils.ts at tag v8.6.2).

Every URL comes from ``GET /``'s ``serviceEndpoints``, the first name matching
case-insensitively (``getEndpointURL``); query strings are concatenated unencoded;
signed requests fetch ``nonce`` first and send ``Number(nonce) + 1``; the signature is
``signMessage(toBeArray(keccak(address + nonce + command)))``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js8

JSON = {"Content-Type": "application/json"}
#: ``getEndpoints`` -> ``getData(url, authorization)`` always sets ``Authorization``;
#: without a token fetch sends the text "undefined" (WebIDL ByteString conversion).
ROOT_HEADERS = {"Content-type": "application/json", "Authorization": "undefined"}


async def endpoint(client: httpx.AsyncClient, name: str) -> tuple[str, str]:
    """(method, path) of service ``name``: ocean.js's case-insensitive ``find``."""
    root = (await client.get("/", headers=ROOT_HEADERS)).json()
    for key, (method, path) in root["serviceEndpoints"].items():
        if key.lower() == name.lower():
            return method, "/" + path.lstrip("/")
    raise KeyError(name)


async def next_nonce(client: httpx.AsyncClient, address: str = CONSUMER_ADDRESS) -> str:
    _, path = await endpoint(client, "nonce")
    nonce = (await client.get(path + f"?userAddress={address}", headers=JSON)).json()["nonce"]
    return str((0 if not nonce else int(float(nonce))) + 1)


async def signed(client: httpx.AsyncClient, command: str, key: str = CONSUMER_KEY,
                 address: str = CONSUMER_ADDRESS) -> tuple[str, str]:
    """(nonce, signature) as ``getSignedCommandParams`` makes them."""
    nonce = await next_nonce(client, address)
    return nonce, sign_like_ocean_js8(address + nonce + command, key)


async def encrypt(client: httpx.AsyncClient, data: Any, chain_id: int = 8996, *,
                  key: str = CONSUMER_KEY, address: str = CONSUMER_ADDRESS,
                  nonce: str | None = None, signature: str | None = None) -> httpx.Response:
    if nonce is None:
        nonce, signature = await signed(client, "encrypt", key, address)
    _, path = await endpoint(client, "encrypt")
    path += f"?chainId={chain_id}&nonce={nonce}&consumerAddress={address}"
    if signature:
        path += f"&signature={signature}"
    return await client.post(path, content=json.dumps(data, separators=(",", ":")),
                             headers={"Content-Type": "application/octet-stream"})


async def file_info(client: httpx.AsyncClient, args: dict[str, Any]) -> httpx.Response:
    """``checkDidFiles`` / ``getFileInfo``: the body with ``checksum: false``."""
    _, path = await endpoint(client, "fileinfo")
    return await client.post(path, json={**args, "checksum": False}, headers=JSON)


async def initialize(client: httpx.AsyncClient, did: str, service_id: str = "0",
                     file_index: int = 0, consumer: str = CONSUMER_ADDRESS) -> httpx.Response:
    _, path = await endpoint(client, "initialize")
    return await client.get(path + f"?documentId={did}&serviceId={service_id}"
                            f"&fileIndex={file_index}&consumerAddress={consumer}",
                            headers=JSON)


async def download_url(client: httpx.AsyncClient, did: str, tx: str, service_id: str = "0",
                       file_index: int = 0, *, key: str = CONSUMER_KEY,
                       address: str = CONSUMER_ADDRESS,
                       token: bool = False) -> str:
    """``getDownloadUrl``: with a token, the address only (no nonce, no signature)."""
    _, path = await endpoint(client, "download")
    url = (path + f"?fileIndex={file_index}&documentId={did}&transferTxId={tx}"
           f"&serviceId={service_id}&consumerAddress={address}")
    if not token:
        nonce, signature = await signed(client, "download", key, address)
        url += f"&nonce={nonce}&signature={signature}"
    return url


async def generate_auth_token(client: httpx.AsyncClient, key: str = CONSUMER_KEY,
                              address: str = CONSUMER_ADDRESS) -> httpx.Response:
    _, path = await endpoint(client, "generateAuthToken")
    nonce, signature = await signed(client, "createAuthToken", key, address)
    return await client.post(path, json={"address": address, "signature": signature,
                                         "nonce": nonce}, headers=JSON)


async def invalidate_auth_token(client: httpx.AsyncClient, token: str,
                                key: str = CONSUMER_KEY,
                                address: str = CONSUMER_ADDRESS) -> httpx.Response:
    """ocean.js 8.6.2 signs ``address + nonce`` here (no command)."""
    _, path = await endpoint(client, "invalidateAuthToken")
    nonce = await next_nonce(client, address)
    signature = sign_like_ocean_js8(address + nonce, key)
    return await client.post(path, json={"address": address, "signature": signature,
                                         "token": token, "nonce": nonce}, headers=JSON)


async def node_status(client: httpx.AsyncClient) -> httpx.Response:
    _, path = await endpoint(client, "directCommand")
    return await client.post(path, json={"command": "status"}, headers=JSON)


# --- compute (C2D v2) -------------------------------------------------------------------
async def compute_environments(client: httpx.AsyncClient) -> httpx.Response:
    """``getComputeEnvironments``: a GET of the advertised path, nothing added."""
    _, path = await endpoint(client, "computeEnvironments")
    return await client.get(path, headers=JSON)


def _start_body(address: str, nonce: str | None, signature: str | None, env_id: str,
                datasets: list[dict[str, Any]], algorithm: dict[str, Any],
                resources: list[dict[str, Any]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"consumerAddress": address, "signature": signature,
                            "nonce": nonce, "environment": env_id}
    if resources is not None:
        body["resources"] = resources
    if datasets:
        body["dataset"] = datasets[0]  # "kept for backwards compatibility"
    body["datasets"] = datasets
    body["algorithm"] = algorithm
    return {k: v for k, v in body.items() if v is not None}  # JSON.stringify drops undefined


async def free_compute_start(client: httpx.AsyncClient, env_id: str,
                             datasets: list[dict[str, Any]], algorithm: dict[str, Any],
                             resources: list[dict[str, Any]] | None = None, *,
                             key: str = CONSUMER_KEY, address: str = CONSUMER_ADDRESS,
                             nonce: str | None = None) -> httpx.Response:
    _, path = await endpoint(client, "freeCompute")
    if nonce is None:
        nonce, signature = await signed(client, "freeStartCompute", key, address)
    else:
        signature = sign_like_ocean_js8(address + nonce + "freeStartCompute", key)
    return await client.post(path, headers=JSON, json=_start_body(
        address, nonce, signature, env_id, datasets, algorithm, resources))


async def compute_start(client: httpx.AsyncClient, env_id: str,
                        datasets: list[dict[str, Any]], algorithm: dict[str, Any],
                        token: str, max_job_duration: int = 60, chain_id: int = 8996,
                        resources: list[dict[str, Any]] | None = None,
                        queue_max_wait: int | None = None) -> httpx.Response:
    """``computeStart`` (paid through escrow)."""
    _, path = await endpoint(client, "computeStart")
    nonce, signature = await signed(client, "startCompute")
    body = _start_body(CONSUMER_ADDRESS, nonce, signature, env_id, datasets, algorithm,
                       resources)
    body.update(maxJobDuration=max_job_duration, chainId=chain_id, payment={
        "chainId": chain_id, "token": token, "maxJobDuration": max_job_duration,
        "resources": resources})
    if queue_max_wait is not None:
        body["queueMaxWaitTime"] = queue_max_wait
    return await client.post(path, headers=JSON, json=body)


async def initialize_compute(client: httpx.AsyncClient, env_id: str,
                             datasets: list[dict[str, Any]], algorithm: dict[str, Any],
                             token: str, max_job_duration: int = 60, chain_id: int = 8996,
                             resources: list[dict[str, Any]] | None = None,
                             address: str = CONSUMER_ADDRESS,
                             queue_max_wait: int | None = None) -> httpx.Response:
    """``initializeCompute`` (the paid path; unsigned): ``resources`` ride in
    ``payment``, ``validUntil`` is sent as ``maxJobDuration``."""
    _, path = await endpoint(client, "initializeCompute")
    payment: dict[str, Any] = {"chainId": chain_id, "token": token}
    if resources is not None:
        payment["resources"] = resources
    body: dict[str, Any] = {
        "datasets": datasets, "algorithm": algorithm, "environment": env_id,
        "payment": payment, "maxJobDuration": max_job_duration, "consumerAddress": address}
    if queue_max_wait is not None:
        body["queueMaxWaitTime"] = queue_max_wait
    return await client.post(path, headers=JSON, json=body)


async def compute_status(client: httpx.AsyncClient, job_id: str | None = None,
                         address: str = CONSUMER_ADDRESS) -> httpx.Response:
    _, path = await endpoint(client, "computeStatus")
    url = path + f"?consumerAddress={address}" + (f"&jobId={job_id}" if job_id else "")
    return await client.get(url, headers=JSON)


async def compute_stop(client: httpx.AsyncClient, job_id: str, *, key: str = CONSUMER_KEY,
                       address: str = CONSUMER_ADDRESS) -> httpx.Response:
    _, path = await endpoint(client, "computeStop")
    nonce, signature = await signed(client, "stopCompute", key, address)
    return await client.put(path + f"?consumerAddress={address}&nonce={nonce}"
                            f"&signature={signature}&jobId={job_id}", headers=JSON)


async def compute_result_url(client: httpx.AsyncClient, job_id: str, index: int, *,
                             key: str = CONSUMER_KEY, address: str = CONSUMER_ADDRESS) -> str:
    _, path = await endpoint(client, "computeResult")
    nonce, signature = await signed(client, "getComputeResult", key, address)
    return (path + f"?consumerAddress={address}&jobId={job_id}&index={index}"
            f"&nonce={nonce}&signature={signature}")


async def streamable_logs_url(client: httpx.AsyncClient, job_id: str, *,
                              key: str = CONSUMER_KEY, address: str = CONSUMER_ADDRESS) -> str:
    _, path = await endpoint(client, "computeStreamableLogs")
    nonce, signature = await signed(client, "getComputeStreamableLogs", key, address)
    return (path + f"?jobId={job_id}&consumerAddress={address}&signature={signature}"
            f"&nonce={nonce}")
