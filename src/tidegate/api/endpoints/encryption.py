"""``POST /api/services/encrypt?chainId=`` — ECIES-encrypt raw bytes (201 text/plain)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.params import Params, read_body
from tidegate.api.routes import Endpoint
from tidegate.commands.encrypt import encrypt_document
from tidegate.errors import BadRequestError


class EncryptParams(Params):
    chainId: str


async def post_encrypt(request: Request) -> Response:
    svc = services(request)
    raw_chain = request.query_params.get("chainId")
    if raw_chain is None:
        raise BadRequestError("Missing chainId query parameter.", code="missing_chain_id")
    chain = svc.chains.parse_and_get(raw_chain)
    # Any content type: ocean.py sends LZMA bytes, ocean.js JSON text; never decode.
    body = await read_body(request, svc.settings.max_encrypt_bytes)
    # Exactly ``text/plain`` (no charset): ocean.py's tests compare the header, and the
    # reference sends it so. The body is ASCII hex.
    ciphertext = await encrypt_document(chain, body)
    return Response(ciphertext.encode("ascii"), status_code=201,
                    headers={"Content-Type": "text/plain"})


ENDPOINTS = [
    Endpoint("encrypt", "POST", "/api/services/encrypt", post_encrypt,
             "ECIES-encrypt the raw request body to the provider key of chainId",
             params=EncryptParams, body="raw"),
]
