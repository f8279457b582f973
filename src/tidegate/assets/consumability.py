"""Is an asset consumable by this consumer? (metadata state, credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.assets.ddo import Asset
from tidegate.chain.clients import ChainConfig
from tidegate.chain.nft import metadata_state
from tidegate.errors import BadRequestError

CONSUMABLE_STATES = {0, 5}  # ACTIVE, UNLISTED


class NotConsumableError(BadRequestError):
    code = "asset_not_consumable"


def _addresses(credentials: Mapping[str, Any], kind: str) -> list[str] | None:
    entries = credentials.get(kind)
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("type") == "address":
            values = entry.get("values")
            if not isinstance(values, list):
                raise NotConsumableError("Asset malformed: credentials without values.",
                                         code="asset_malformed")
            return [str(v).lower() for v in values]
    return None


def check_credentials(asset: Asset, consumer: str) -> None:
    """Allow list (if non-empty) must contain the consumer; else the deny list must not."""
    allow = _addresses(asset.credentials, "allow")
    deny = _addresses(asset.credentials, "deny")
    who = consumer.lower()
    if allow:
        if who not in allow:
            raise NotConsumableError(
                f"Error: Access to asset {asset.did} was denied with code: "
                "ConsumableCodes.CREDENTIAL_NOT_IN_ALLOW_LIST.",
                code="credential_not_in_allow_list")
    elif deny and who in deny:
        raise NotConsumableError(
            f"Error: Access to asset {asset.did} was denied with code: "
            "ConsumableCodes.CREDENTIAL_IN_DENY_LIST.", code="credential_in_deny_list")


async def check_consumable(chain: ChainConfig, asset: Asset, consumer: str) -> None:
    """Raise NotConsumableError unless ``consumer`` may consume ``asset`` now."""
    if not asset.metadata or asset.nft_state not in CONSUMABLE_STATES:
        raise NotConsumableError(
            f"Error: Access to asset {asset.did} was denied with code: "
            "ConsumableCodes.ASSET_DISABLED.", code="asset_disabled")
    check_credentials(asset, consumer)
    if await metadata_state(chain, asset.nft_address) not in CONSUMABLE_STATES:
        raise NotConsumableError("Asset is not consumable.")
