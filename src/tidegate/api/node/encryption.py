"""Ocean Node's ``POST /api/services/encrypt``: signed, answers 200 octet-stream ``0x…``.

Reached from the one encrypt route when the query names a ``consumerAddress`` (which
only Ocean Node's clients send; the classic encrypt is unsigned and answers 201).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tidegate.api.context import services
from tidegate.api.node.credentials import ENCRYPT, node_proof, node_token
from tidegate.api.params import read_body
from tidegate.commands.encrypt import SignedEncrypt, encrypt_signed
from tidegate.types import Nonce


async def node_encrypt(request: Request, chain_id: int, consumer: str, nonce: Nonce | None,
                       signature: str | None) -> Response:
    svc = services(request)
    chain = svc.chains.get(chain_id)
    body = await read_body(request, svc.settings.max_encrypt_bytes)
    ciphertext = await encrypt_signed(
        chain, SignedEncrypt(body, node_proof(consumer, nonce, signature, ENCRYPT,
                                              node_token(request))),
        svc.authenticator)
    return Response(ciphertext.encode("ascii"), status_code=200,
                    headers={"Content-Type": "application/octet-stream"})
