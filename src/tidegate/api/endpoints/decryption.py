"""``POST /api/services/decrypt`` — 201 with the exact document bytes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params, parse_params
from tidegate.api.routes import Endpoint
from tidegate.commands.decrypt import DecryptRequest, decrypt_ddo


class DecryptParams(Params):
    decrypterAddress: str
    chainId: str
    dataNftAddress: str
    nonce: str
    signature: str | None = None
    transactionId: str | None = None
    encryptedDocument: str | None = None
    flags: str | None = None
    documentHash: str | None = None


async def post_decrypt(request: Request) -> Response:
    p = await parse_params(request, DecryptParams)
    svc = services(request)
    plaintext = await decrypt_ddo(
        DecryptRequest(
            decrypter=p.decrypterAddress, chain_id=p.chainId, data_nft=p.dataNftAddress,
            nonce=p.nonce, signature=p.signature, auth_token=request.headers.get("AuthToken"),
            transaction_id=p.transactionId, encrypted_document=p.encryptedDocument,
            flags=p.flags, document_hash=p.documentHash,
        ),
        svc.chains, svc.authenticator, svc.settings.authorized_decrypters,
    )
    return Response(plaintext, status_code=201, media_type="text/plain")


ENDPOINTS = [
    Endpoint("decrypt", "POST", "/api/services/decrypt", post_decrypt,
             "Decrypt an on-chain DDO (signed (transactionId or dataNftAddress) + "
             "decrypterAddress + chainId + nonce, or AuthToken)",
             params=DecryptParams, body="json", responses=((201, "The document bytes"),)),
]
