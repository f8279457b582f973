"""``download``: a consumer who ordered gets file ``fileIndex`` of an access service.

Order of checks: the signed request (nonce consumed atomically), the asset and its
consumability, the service, the on-chain order, the file index; then exactly one
upstream request whose bytes are streamed back.

A compute service's files are downloadable only by a compute consumer: the wallet an
environment of the compute engine on the asset's chain names as ``consumerAddress``.
The operator-service's job pods fetch their inputs this way (signed by that wallet,
with the compute order as ``transferTxId``), as with the reference Provider; the
local engine reads its inputs in process and needs no download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tidegate.assets.resolver import Resolver
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.signatures import download_message
from tidegate.chain.clients import Chains
from tidegate.chain.orders import OrderValidator
from tidegate.commands.initialize import load_service, parse_file_index
from tidegate.compute.engines.base import ComputeEngine
from tidegate.errors import BadRequestError, TidegateError
from tidegate.files.objects import StorageContext, parse_file_object
from tidegate.files.open import FileStream, open_file
from tidegate.files.service_files import decrypt_service_files
from tidegate.types import checksum_address

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadRequest:
    did: str
    service_id: str
    consumer: str
    transfer_tx: str
    file_index: str
    nonce: str
    signature: str | None
    auth_token: str | None
    userdata: Any = None
    range_header: str | None = None


async def download_file(
    req: DownloadRequest, *, authenticator: RequestAuthenticator, resolver: Resolver,
    chains: Chains, orders: OrderValidator, storage: StorageContext,
    compute: ComputeEngine | None = None,
) -> FileStream:
    """Authorise the download and open the file (nothing is streamed yet).

    ``compute`` is the app's compute engine: without it, no one may download a
    compute service's files.
    """
    consumer = await authenticator.authenticate(
        signer=req.consumer, message=download_message(req.did), nonce=req.nonce,
        signature=req.signature, auth_token=req.auth_token,
    )
    asset, service, chain = await load_service(resolver, chains, req.did, req.service_id,
                                               consumer)
    if service.type != "access" and not await _is_compute_consumer(
            compute, chain.chain_id, consumer):
        raise BadRequestError(f"Service with index={req.service_id} is not an access service.",
                              code="not_access_service")
    await orders.validate(chain, asset=asset, service=service, tx_id=req.transfer_tx,
                          sender=consumer)
    index = parse_file_index(req.file_index)
    if index is None:
        raise BadRequestError("The fileIndex is required.", code="invalid_file_index")
    files = decrypt_service_files(asset, service, chain.provider_key)
    if index >= len(files):
        raise BadRequestError(f"No such fileIndex {index}.", code="invalid_file_index")
    return await open_file(parse_file_object(files[index], req.userdata), storage,
                           range_header=req.range_header)


async def _is_compute_consumer(compute: ComputeEngine | None, chain_id: int,
                               consumer: str) -> bool:
    """Whether ``consumer`` is the ``consumerAddress`` of an environment on the chain.

    An engine that cannot list its environments (operator-service down) names no one,
    as the reference: the request is refused as for any other consumer.
    """
    if compute is None:
        return False
    try:
        environments = await compute.environments()
    except TidegateError as exc:
        logger.warning("compute environments unavailable for a download check (%s)", exc.code)
        return False
    wallet = checksum_address(consumer)
    for env in environments:
        if env.chain_id != chain_id:
            continue
        try:
            if checksum_address(env.consumer_address) == wallet:
                return True
        except ValueError:  # an operator environment without a valid address
            continue
    return False
