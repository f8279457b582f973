"""``POST /api/services/encrypt?chainId=`` — ECIES-encrypt raw bytes (201 text/plain).

With ``consumerAddress`` in the query it is Ocean Node's signed encrypt
(:mod:`tidegate.api.node.encryption`, 200 octet-stream).
"""

from __future__ import annotations

from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.node.encryption import node_encrypt
from tidegate.api.params import NONCE_RULE, Params, read_body
from tidegate.api.routes import Endpoint
from tidegate.commands.encrypt import encrypt_document
from tidegate.types import AddressText, ChainIdParam, Nonce, fail


class EncryptParams(Params):
    """The query string; the body is the document, as raw bytes.

    ``consumerAddress`` (with ``nonce`` and ``signature``, or an ``Authorization``
    token) is Ocean Node's signed encrypt: only its clients send it.
    """

    chainId: ChainIdParam
    consumerAddress: AddressText | None = None
    nonce: Nonce | None = pydantic.Field(None, description=NONCE_RULE)
    signature: str | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _chain_id_given(cls, data: Any) -> Any:
        # The reference's own answer (and code) for a missing chainId.
        if isinstance(data, dict) and not data.get("chainId"):
            fail("missing_chain_id", "Missing chainId query parameter.")
        return data


async def post_encrypt(request: Request, p: EncryptParams) -> Response:
    if p.consumerAddress is not None:
        return await node_encrypt(request, p.chainId.value, p.consumerAddress, p.nonce,
                                  p.signature)
    svc = services(request)
    chain = svc.chains.get(p.chainId.value)
    # Any content type: ocean.py sends LZMA bytes, ocean.js JSON text; never decode.
    body = await read_body(request, svc.settings.max_encrypt_bytes)
    # Exactly ``text/plain`` (no charset): ocean.py's tests compare the header, and the
    # reference sends it so. The body is ASCII hex.
    ciphertext = await encrypt_document(chain, body)
    return Response(ciphertext.encode("ascii"), status_code=201,
                    headers={"Content-Type": "text/plain"})


ENDPOINTS = [
    Endpoint("encrypt", "POST", "/api/services/encrypt", post_encrypt,
             "ECIES-encrypt the raw request body to the provider key of chainId "
             "(with consumerAddress: Ocean Node's, signed address + nonce + 'encrypt')",
             params=EncryptParams, source="query", free_body="bytes"),
]
