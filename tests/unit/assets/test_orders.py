"""Order validation against real orders on the dev chain."""

import time
from typing import Any

import pytest

from tests.chain_fixtures import ChainHarness, order_asset
from tests.helpers import OTHER_KEY, PROVIDER_KEY
from tidegate.assets.ddo import Asset
from tidegate.assets.orders import OrderInvalidError, OrderValidator
from tidegate.dev import ocean_txs
from tidegate.fees.provider_fees import build_provider_data, sign_provider_fee


def parsed(asset: Any) -> Asset:
    return Asset.parse(asset.ddo)


@pytest.mark.parametrize("variant", ["plain", "fixed_rate", "dispenser"])
async def test_valid_orders_of_each_pricing(harness: ChainHarness, chain_config: Any,
                                            variant: str) -> None:
    asset = harness.publish(pricing=variant)
    if variant == "plain":
        harness.give_datatokens(asset)
    tx = order_asset(harness, asset, variant=variant)
    a = parsed(asset)
    order = await OrderValidator(1).validate(chain_config, asset=a, service=a.services[0],
                                             tx_id=tx, sender=harness.consumer.address)
    assert order.order_tx == tx
    assert order.consumer == harness.consumer.address


async def test_sender_must_be_consumer_or_payer(harness: ChainHarness, chain_config: Any) -> None:
    asset = harness.publish()
    harness.give_datatokens(asset)
    tx = order_asset(harness, asset)
    a = parsed(asset)
    with pytest.raises(OrderInvalidError, match="consumer or payer"):
        await OrderValidator(1).validate(chain_config, asset=a, service=a.services[0],
                                         tx_id=tx, sender=harness.publisher.address)


async def test_fee_signed_by_another_provider(harness: ChainHarness, chain_config: Any) -> None:
    asset = harness.publish()
    harness.give_datatokens(asset)
    tx = order_asset(harness, asset, fee_key=OTHER_KEY)  # valid on chain, not ours
    a = parsed(asset)
    with pytest.raises(OrderInvalidError, match="not issued by this provider"):
        await OrderValidator(1).validate(chain_config, asset=a, service=a.services[0],
                                         tx_id=tx, sender=harness.consumer.address)


async def test_order_of_another_service_or_datatoken(harness: ChainHarness,
                                                     chain_config: Any) -> None:
    asset = harness.publish(services=("access", "compute"))
    other = harness.publish(name="other")
    harness.give_datatokens(asset)
    harness.give_datatokens(other)
    tx = order_asset(harness, asset, service_index=1)
    a = parsed(asset)
    validator = OrderValidator(1)
    with pytest.raises(OrderInvalidError):  # ordered service 1, asked for service 0
        await validator.validate(chain_config, asset=a, service=a.services[0], tx_id=tx,
                                 sender=harness.consumer.address)
    # Events of another datatoken in the transaction never count for this one.
    other_tx = order_asset(harness, other)
    with pytest.raises(OrderInvalidError):
        await validator.validate(chain_config, asset=a, service=a.services[0], tx_id=other_tx,
                                 sender=harness.consumer.address)


async def test_timeout_and_reuse(harness: ChainHarness, chain_config: Any) -> None:
    # An hour, not a minute: on anvil a reverted snapshot can leave the next block's
    # timestamp behind the wall clock, which a short timeout would count as expiry.
    asset = harness.publish(timeout=3600)
    harness.give_datatokens(asset)
    tx = order_asset(harness, asset)
    a = parsed(asset)
    validator = OrderValidator(1)
    order = await validator.validate(chain_config, asset=a, service=a.services[0], tx_id=tx,
                                     sender=harness.consumer.address)
    with pytest.raises(OrderInvalidError, match="expired"):
        await validator.validate(chain_config, asset=a, service=a.services[0], tx_id=tx,
                                 sender=harness.consumer.address, now=order.timestamp + 3601)
    fee = sign_provider_fee(PROVIDER_KEY, provider_data=build_provider_data(
        None, time.time(), asset.datatoken_address, "0"), fee_token=harness.addresses["Ocean"],
        fee_amount=0, valid_until=0)
    reuse = str(ocean_txs.reuse_order(harness.txs, harness.consumer,
                                      asset.datatoken_address, tx, fee))
    reused = await validator.validate(chain_config, asset=a, service=a.services[0],
                                      tx_id=reuse, sender=harness.consumer.address)
    assert reused.order_tx == tx


async def test_unknown_transaction_is_refused_quickly(chain_config: Any,
                                                      harness: ChainHarness) -> None:
    asset = harness.publish()
    a = parsed(asset)
    start = time.monotonic()
    with pytest.raises(OrderInvalidError, match="not found"):
        await OrderValidator(0.3).validate(chain_config, asset=a, service=a.services[0],
                                           tx_id="0x" + "12" * 32,
                                           sender=harness.consumer.address)
    assert time.monotonic() - start < 5  # a bound against hanging, not a timing assertion
    with pytest.raises(OrderInvalidError, match="transaction hash"):
        await OrderValidator(0.3).validate(chain_config, asset=a, service=a.services[0],
                                           tx_id="0x1234", sender=harness.consumer.address)
