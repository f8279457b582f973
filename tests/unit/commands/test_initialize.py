"""initialize_access, called directly: quotes, reused orders, refusals."""

from __future__ import annotations

import pytest

from tests.chain_fixtures import order_asset
from tests.helpers import CONSUMER_ADDRESS, OTHER_ADDRESS, PROVIDER_ADDRESS
from tests.unit.commands.conftest import Deps
from tidegate.commands.initialize import (
    AccessQuote,
    InitializeAccess,
    ValidOrder,
    initialize_access,
)
from tidegate.errors import BadRequestError
from tidegate.fees.provider_fees import verify_provider_fee_signature


async def run(deps: Deps, cmd: InitializeAccess, amount: int = 0) -> ValidOrder | AccessQuote:
    return await initialize_access(
        cmd, resolver=deps.resolver, chains=deps.chains, store=deps.store, orders=deps.orders,
        storage=deps.storage, fee_amount=amount)


async def test_a_quote_is_signed_for_the_service(deps: Deps) -> None:
    asset = await deps.publish()
    quote = await run(deps, InitializeAccess(asset.did, "0", CONSUMER_ADDRESS), amount=7)
    assert isinstance(quote, AccessQuote)
    assert (quote.datatoken, quote.nonce, quote.compute_address) == (
        asset.datatoken_address, 0, PROVIDER_ADDRESS)
    fee = quote.provider_fee
    assert (fee.provider_fee_amount, fee.valid_until) == (7, 0)
    assert fee.provider_fee_token == deps.harness.addresses["Ocean"]
    assert verify_provider_fee_signature(fee, PROVIDER_ADDRESS)


async def test_a_valid_order_is_reused_and_an_invalid_one_requoted(deps: Deps) -> None:
    asset = await deps.publish()
    tx = order_asset(deps.harness, asset)
    answer = await run(deps, InitializeAccess(asset.did, "0", CONSUMER_ADDRESS, transfer_tx=tx))
    assert answer == ValidOrder(tx)
    # The same order does not count for another consumer: a fresh quote.
    other = await run(deps, InitializeAccess(asset.did, "0", OTHER_ADDRESS, transfer_tx=tx))
    assert isinstance(other, AccessQuote)


async def test_file_index_is_checked_against_the_files(deps: Deps) -> None:
    origin = deps.harness.origin
    asset = await deps.publish(files=[{"type": "url", "url": origin + "/data.csv"},
                                      {"type": "url", "url": origin + "/missing"}])
    ok = await run(deps, InitializeAccess(asset.did, "0", CONSUMER_ADDRESS, file_index=0))
    assert isinstance(ok, AccessQuote)
    for index, code in ((1, "file_unavailable"), (2, "invalid_file_index")):
        with pytest.raises(BadRequestError) as refused:
            await run(deps, InitializeAccess(asset.did, "0", CONSUMER_ADDRESS,
                                             file_index=index))
        assert refused.value.code == code, index


@pytest.mark.parametrize(("did_of", "service_id", "code"), [
    (lambda asset: asset.did, "1", "use_initialize_compute"),
    (lambda asset: asset.did, "9", "invalid_service_id"),
    (lambda asset: "did:op:" + "0" * 64, "0", "did_not_found"),
])
async def test_refusals(deps: Deps, did_of: object, service_id: str, code: str) -> None:
    asset = await deps.publish(services=("access", "compute"))
    with pytest.raises(BadRequestError) as refused:
        await run(deps, InitializeAccess(did_of(asset), service_id, CONSUMER_ADDRESS))  # type: ignore[operator]
    assert refused.value.code == code
