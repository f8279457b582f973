"""decrypt_ddo, called directly: both ways to name a document, states, decrypters."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers import CONSUMER_ADDRESS, OTHER_ADDRESS
from tests.unit.commands.conftest import Deps, signed
from tidegate.auth.signatures import decrypt_message
from tidegate.commands.decrypt import (
    DecryptDocument,
    DirectDocument,
    DocumentByTransaction,
    decrypt_ddo,
)
from tidegate.dev.ocean_txs import set_metadata_state
from tidegate.dev.publishing import compact_json
from tidegate.errors import BadRequestError, ForbiddenError, TidegateError


def by_transaction(tx: str, nft: str) -> DecryptDocument:
    return DecryptDocument(chain_id=8996, data_nft=nft, document=DocumentByTransaction(tx),
                           proof=signed(decrypt_message(tx, nft, CONSUMER_ADDRESS, "8996")))


async def test_by_transaction_gives_the_exact_bytes(deps: Deps) -> None:
    asset = await deps.publish()
    plain = await decrypt_ddo(by_transaction(asset.metadata_tx, asset.nft_address),
                              deps.chains, deps.authenticator, ())
    assert plain == compact_json(asset.ddo)


async def test_a_direct_document(deps: Deps) -> None:
    asset = await deps.publish()
    document = b'{"id": "direct"}'
    encrypted = bytes.fromhex(deps.harness.encrypt(document)[2:])
    proof = signed(decrypt_message(None, asset.nft_address, CONSUMER_ADDRESS, "8996"))
    cmd = DecryptDocument(8996, asset.nft_address, DirectDocument(
        encrypted, 2, hashlib.sha256(document).digest()), proof)
    assert await decrypt_ddo(cmd, deps.chains, deps.authenticator, ()) == document


@pytest.mark.parametrize(("state", "error", "code"), [
    (1, ForbiddenError, "asset_end_of_life"), (3, ForbiddenError, "asset_revoked"),
    (4, None, None), (5, None, None),
])
async def test_metadata_states(deps: Deps, state: int, error: type[TidegateError] | None,
                               code: str | None) -> None:
    asset = await deps.publish()
    set_metadata_state(deps.harness.txs, deps.harness.publisher, asset.nft_address, state)
    cmd = by_transaction(asset.metadata_tx, asset.nft_address)
    if error is None:
        assert await decrypt_ddo(cmd, deps.chains, deps.authenticator, ())
        return
    with pytest.raises(error) as refused:
        await decrypt_ddo(cmd, deps.chains, deps.authenticator, ())
    assert refused.value.code == code


async def test_refusals(deps: Deps) -> None:
    asset = await deps.publish()
    with pytest.raises(ForbiddenError):  # not in AUTHORIZED_DECRYPTERS
        await decrypt_ddo(by_transaction(asset.metadata_tx, asset.nft_address), deps.chains,
                          deps.authenticator, (OTHER_ADDRESS,))
    with pytest.raises(BadRequestError) as unsupported:
        await decrypt_ddo(DecryptDocument(1, asset.nft_address, DocumentByTransaction(
            asset.metadata_tx), signed("x")), deps.chains, deps.authenticator, ())
    assert unsupported.value.code == "unsupported_chain"
    not_factory = deps.harness.addresses["Ocean"]
    with pytest.raises(BadRequestError) as forged:
        await decrypt_ddo(by_transaction(asset.metadata_tx, not_factory), deps.chains,
                          deps.authenticator, ())
    assert forged.value.code == "nft_not_from_factory"
