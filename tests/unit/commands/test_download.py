"""download_file, called directly, on both stores: order, nonce, file index, userdata."""

from __future__ import annotations

import pytest

from tests.chain_fixtures import ORIGIN_FILES, order_asset
from tests.helpers import CONSUMER_ADDRESS, OTHER_ADDRESS, OTHER_KEY
from tests.unit.commands.conftest import Deps, signed
from tidegate.assets.orders import OrderInvalidError
from tidegate.auth.nonces import NonceReusedError
from tidegate.auth.request_auth import SignedRequest
from tidegate.auth.signatures import InvalidSignatureError, download_message
from tidegate.commands.download import DownloadFile, download_file
from tidegate.errors import BadRequestError
from tidegate.files.open import FileStream


async def run(deps: Deps, cmd: DownloadFile) -> FileStream:
    return await download_file(cmd, authenticator=deps.authenticator, resolver=deps.resolver,
                               chains=deps.chains, orders=deps.orders, storage=deps.storage)


async def read(stream: FileStream) -> bytes:
    try:
        return b"".join([chunk async for chunk in stream.iter_bytes()])
    finally:
        await stream.aclose()


def download(did: str, tx: str, proof: SignedRequest, file_index: int = 0,
             **kwargs: object) -> DownloadFile:
    return DownloadFile(did=did, service_id="0", transfer_tx=tx, file_index=file_index,
                        proof=proof, **kwargs)  # type: ignore[arg-type]


async def test_download_consumes_the_nonce_once(deps_on: Deps) -> None:
    deps = deps_on
    asset = await deps.publish()
    tx = order_asset(deps.harness, asset)
    proof = signed(download_message(asset.did))
    stream = await run(deps, download(asset.did, tx, proof))
    assert (stream.status_code, stream.filename) == (200, "data.csv")
    assert await read(stream) == ORIGIN_FILES["data.csv"]
    assert await deps.store.get_nonce(CONSUMER_ADDRESS) == proof.nonce.text  # type: ignore[union-attr]
    with pytest.raises(NonceReusedError):
        await run(deps, download(asset.did, tx, proof))


async def test_a_bad_signature_burns_no_nonce_and_reaches_no_chain(deps: Deps) -> None:
    asset = await deps.publish()
    forged = signed(download_message(asset.did), key=OTHER_KEY)  # claims CONSUMER_ADDRESS
    with pytest.raises(InvalidSignatureError):
        await run(deps, download(asset.did, "0x" + "ab" * 32, forged))
    assert await deps.store.get_nonce(CONSUMER_ADDRESS) is None


async def test_refusals_after_the_signature(deps: Deps) -> None:
    asset = await deps.publish(files=[{"type": "url", "url": deps.harness.origin + "/data.csv"}])
    tx = order_asset(deps.harness, asset)
    with pytest.raises(BadRequestError) as beyond:
        await run(deps, download(asset.did, tx, signed(download_message(asset.did)),
                                 file_index=1))
    assert beyond.value.code == "invalid_file_index"
    # Ordered by the consumer: another signer may not use the order.
    with pytest.raises(OrderInvalidError):
        await run(deps, download(asset.did, tx, signed(download_message(asset.did),
                                                       key=OTHER_KEY, signer=OTHER_ADDRESS)))


async def test_undecodable_userdata_is_dropped(deps: Deps) -> None:
    # The one userdata rule (tidegate.types.userdata_object), for initialize, download
    # and fileinfo alike: text that is not a JSON object is no userdata at all.
    from tidegate.commands.asset_services import consumable_service, service_file
    from tidegate.types import userdata_object

    asset = await deps.publish()
    found = await consumable_service(deps.resolver, deps.chains, asset.did, "0",
                                     CONSUMER_ADDRESS)
    for raw in ("not json", "[1, 2]", "5", "", None, {}):
        file = await service_file(found, 0, userdata_object(raw))
        assert file.userdata is None, raw
    for raw in ('{"rows": 5}', {"rows": 5}):
        assert (await service_file(found, 0, userdata_object(raw))).userdata == {"rows": 5}
