"""``POST /api/services/decrypt`` — 201 with the exact document bytes."""

from __future__ import annotations

from typing import Self

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.node.credentials import DECRYPT_DDO, request_token
from tidegate.api.params import Params
from tidegate.api.routes import Endpoint
from tidegate.auth.request_auth import SignedRequest
from tidegate.auth.signatures import decrypt_message
from tidegate.commands.decrypt import (
    DecryptDocument,
    DirectDocument,
    DocumentByTransaction,
    decrypt_ddo,
)
from tidegate.types import (
    AddressText,
    Bytes32,
    ChainIdParam,
    Flags,
    HexBytes,
    Nonce,
    TxHash,
    checksum_address,
    fail,
)


class DecryptParams(Params):
    """Name the document by ``transactionId``, or give ``encryptedDocument`` + ``flags`` +
    ``documentHash``. Signed: (transactionId, or dataNftAddress without one) +
    decrypterAddress + chainId + nonce, or an AuthToken header."""

    required_one_of = (("transactionId",), ("encryptedDocument", "flags", "documentHash"))

    decrypterAddress: AddressText
    chainId: ChainIdParam
    dataNftAddress: AddressText
    nonce: Nonce
    signature: str | None = None
    transactionId: TxHash | None = None
    encryptedDocument: HexBytes | None = None
    flags: Flags | None = None
    documentHash: Bytes32 | None = None

    def _document(self) -> DocumentByTransaction | DirectDocument | None:
        if self.transactionId is not None:
            return DocumentByTransaction(self.transactionId)
        if self.encryptedDocument is None or self.flags is None or self.documentHash is None:
            return None
        return DirectDocument(self.encryptedDocument, self.flags, self.documentHash)

    @pydantic.model_validator(mode="after")
    def _document_named(self) -> Self:
        if self._document() is None:
            fail("missing_document",
                 "Give transactionId, or encryptedDocument, flags and documentHash.")
        return self

    def command(self, auth_token: str | None, token_needs_nonce: bool = True) -> DecryptDocument:
        document = self._document()
        assert document is not None  # the model validator refused the request otherwise
        return DecryptDocument(
            chain_id=self.chainId.value, data_nft=checksum_address(self.dataNftAddress),
            document=document,
            proof=SignedRequest(
                signer=self.decrypterAddress,
                message=decrypt_message(self.transactionId, self.dataNftAddress,
                                        self.decrypterAddress, self.chainId.text),
                nonce=self.nonce, signature=self.signature, auth_token=auth_token,
                # Ocean Node's indexer signs decrypterAddress + nonce + "decryptDDO".
                command=DECRYPT_DDO, token_needs_nonce=token_needs_nonce))


async def post_decrypt(request: Request, p: DecryptParams) -> Response:
    svc = services(request)
    plaintext = await decrypt_ddo(p.command(*request_token(request)), svc.chains,
                                  svc.authenticator, svc.settings.authorized_decrypters)
    return Response(plaintext, status_code=201, media_type="text/plain")


ENDPOINTS = [
    Endpoint("decrypt", "POST", "/api/services/decrypt", post_decrypt,
             "Decrypt an on-chain DDO (signed (transactionId or dataNftAddress) + "
             "decrypterAddress + chainId + nonce, or AuthToken)",
             params=DecryptParams, responses=((201, "The document bytes"),)),
]
