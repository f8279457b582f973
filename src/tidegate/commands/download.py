"""``download``: a consumer who ordered gets file ``file_index`` of an access service.

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

from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import Resolver
from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.chain.clients import Chains
from tidegate.commands.asset_services import consumable_service, service_file
from tidegate.compute.engines.base import ComputeEngine
from tidegate.errors import BadRequestError, TidegateError
from tidegate.files.objects import StorageContext
from tidegate.files.open import FileStream, open_file
from tidegate.types import checksum_address

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadFile:
    """Stream file ``file_index`` of service ``service_id`` of ``did``, ordered in
    ``transfer_tx`` by the signer of ``proof`` (the consumer).

    ``range_header``: the client's ``Range``, passed upstream unless the file sets one.
    """

    did: str
    service_id: str
    transfer_tx: str
    file_index: int
    proof: SignedRequest
    userdata: dict[str, Any] | None = None
    range_header: str | None = None


async def download_file(
    cmd: DownloadFile, *, authenticator: RequestAuthenticator, resolver: Resolver,
    chains: Chains, orders: OrderValidator, storage: StorageContext,
    compute: ComputeEngine | None = None,
) -> FileStream:
    """Authorise the download and open the file (nothing is streamed yet).

    ``compute`` is the app's compute engine: without it, no one may download a
    compute service's files.
    """
    consumer = await authenticator.authenticate(cmd.proof)
    found = await consumable_service(resolver, chains, cmd.did, cmd.service_id, consumer)
    # Compute services are downloadable only by a compute environment's own wallet
    # (an operator-service pod fetching the job's inputs), as the reference.
    if found.service.type != "access" and not await _is_compute_consumer(
            compute, found.chain.chain_id, consumer):
        raise BadRequestError(f"Service with index={cmd.service_id} is not an access service.",
                              code="not_access_service")
    await orders.validate(found.chain, asset=found.asset, service=found.service,
                          tx_id=cmd.transfer_tx, sender=consumer)
    file = await service_file(found, cmd.file_index, cmd.userdata)
    return await open_file(file, storage, range_header=cmd.range_header)


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
