"""One chain-independent key: DDO validation proofs and operator-service requests agree.

With ``PROVIDER_PRIVATE_KEY`` as a JSON map and no ``UNIVERSAL_PRIVATE_KEY``, the rule
is the key of the lowest chain id (docs/configuration.md), whatever the map's order.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import orjson
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.helpers import OTHER_KEY, PROVIDER_KEY
from tidegate.app import create_app
from tidegate.assets.ddo import did_for
from tidegate.settings import Settings

NFT = "0x" + "12" * 20
LOWEST_CHAIN_KEY = OTHER_KEY


def _ddo() -> dict[str, object]:
    return {
        "@context": ["https://w3id.org/did/v1"], "id": did_for(NFT, 137), "version": "4.1.0",
        "chainId": 137, "nftAddress": NFT,
        "metadata": {"created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z",
                     "type": "dataset", "name": "n", "description": "d", "author": "a",
                     "license": "MIT"},
        "services": [{"id": "0", "type": "access", "files": "0x00",
                      "datatokenAddress": "0x" + "34" * 20,
                      "serviceEndpoint": "http://tidegate", "timeout": 0}],
    }


async def test_validate_signs_with_the_operator_service_key(
        make_settings: Callable[..., Settings]) -> None:
    # 8996 comes first in the map; 137 is the lowest chain id.
    settings = make_settings(
        PROVIDER_PRIVATE_KEY=json.dumps({"8996": PROVIDER_KEY, "137": LOWEST_CHAIN_KEY}),
        NETWORK_URL=json.dumps({"8996": "http://127.0.0.1:9", "137": "http://127.0.0.1:9"}),
        OPERATOR_SERVICE_URL="http://127.0.0.1:9",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tidegate") as client:
            body = orjson.dumps(_ddo())
            r = await client.post("/api/aquarius/assets/ddo/validate", content=body)
        assert r.status_code == 200, r.text
        proof = r.json()
        signer = Account.recover_message(
            encode_defunct(primitive=bytes.fromhex(proof["hash"][2:])),
            vrs=(proof["v"], int(proof["r"][0], 16), int(proof["s"][0], 16)))
        expected = Account.from_key(LOWEST_CHAIN_KEY).address
        assert signer == proof["publicKey"] == expected
        assert app.state.services.engine.address == expected
