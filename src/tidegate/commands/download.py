"""``download``: a consumer who ordered gets file ``file_index`` of an access service.

Order of checks: the signed request (nonce consumed atomically), the asset and its
consumability, the service, the on-chain order, the file index; then exactly one
upstream request whose bytes are streamed back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import Resolver
from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.chain.clients import Chains
from tidegate.commands.asset_services import consumable_service, service_file
from tidegate.errors import BadRequestError
from tidegate.files.objects import StorageContext
from tidegate.files.open import FileStream, open_file


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
    compute_consumers: frozenset[str] = frozenset(),
) -> FileStream:
    """Authorise the download and open the file (nothing is streamed yet)."""
    consumer = await authenticator.authenticate(cmd.proof)
    found = await consumable_service(resolver, chains, cmd.did, cmd.service_id, consumer)
    # Compute services are downloadable only by a compute engine's own wallet
    # (which fetches the job's inputs).
    if found.service.type != "access" and consumer not in compute_consumers:
        raise BadRequestError(f"Service with index={cmd.service_id} is not an access service.",
                              code="not_access_service")
    await orders.validate(found.chain, asset=found.asset, service=found.service,
                          tx_id=cmd.transfer_tx, sender=consumer)
    file = await service_file(found, cmd.file_index, cmd.userdata)
    return await open_file(file, storage, range_header=cmd.range_header)
