"""``download``: a consumer who ordered gets file ``fileIndex`` of an access service.

Order of checks: the signed request (nonce consumed atomically), the asset and its
consumability, the service, the on-chain order, the file index; then exactly one
upstream request whose bytes are streamed back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import Resolver
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.signatures import download_message
from tidegate.chain.clients import Chains
from tidegate.commands.initialize import load_service, parse_file_index
from tidegate.errors import BadRequestError
from tidegate.files.objects import StorageContext, parse_file_object
from tidegate.files.open import FileStream, open_file
from tidegate.files.service_files import decrypt_service_files


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
    compute_consumers: frozenset[str] = frozenset(),
) -> FileStream:
    """Authorise the download and open the file (nothing is streamed yet)."""
    consumer = await authenticator.authenticate(
        signer=req.consumer, message=download_message(req.did), nonce=req.nonce,
        signature=req.signature, auth_token=req.auth_token,
    )
    asset, service, chain = await load_service(resolver, chains, req.did, req.service_id,
                                               consumer)
    # Compute services are downloadable only by a compute engine's own wallet
    # (which fetches the job's inputs).
    if service.type != "access" and consumer not in compute_consumers:
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
