"""Consumability: may this asset be used now, by this consumer? One home for the rules.

The data NFT's ``metaDataState`` (:class:`MetadataState`) decides what a provider
does with an asset: orders and downloads need an active or unlisted asset; an
indexer may still decrypt the DDO of a temporarily disabled one; end-of-life,
deprecated and revoked assets are refused with their own codes. On top of the
state, the DDO's credentials allow or deny consumers by address.

Credentials of the DDO versions only ddo-js knows (4.7.0+, 5.x) may also name access
lists, verifiable credentials and policies, and ``match_allow``/``match_deny``
(:func:`_check_rules`). Tidegate enforces address rules only, so an asset whose
rules it cannot evaluate is refused (``credential_not_supported``) rather than
served to anyone: failing closed is the only safe reading of a rule not understood.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any, Final

from tidegate.assets.ddo import Asset, Service
from tidegate.chain.clients import ChainConfig
from tidegate.chain.nft import metadata_state
from tidegate.errors import BadRequestError, ForbiddenError


class MetadataState(IntEnum):
    """``ERC721Template.metaDataState`` values (Ocean contracts)."""

    ACTIVE = 0
    END_OF_LIFE = 1
    DEPRECATED = 2
    REVOKED = 3
    TEMPORARILY_DISABLED = 4
    UNLISTED = 5


CONSUMABLE_STATES: Final = frozenset({MetadataState.ACTIVE, MetadataState.UNLISTED})
"""States in which an asset may be ordered, downloaded and computed on."""
DECRYPTABLE_STATES: Final = frozenset({MetadataState.ACTIVE, MetadataState.TEMPORARILY_DISABLED,
                                       MetadataState.UNLISTED})
"""States in which ``/decrypt`` hands an indexer the DDO."""
_DECRYPT_REFUSALS: Final = {
    MetadataState.END_OF_LIFE: ("Asset end of life", "asset_end_of_life"),
    MetadataState.DEPRECATED: ("Asset deprecated", "asset_deprecated"),
    MetadataState.REVOKED: ("Asset revoked", "asset_revoked"),
}


class NotConsumableError(BadRequestError):
    code = "asset_not_consumable"


def check_decryptable(state: int) -> None:
    """Raise unless an indexer may decrypt a DDO whose NFT is in ``state``.

    End of life, deprecated and revoked: 403 with their codes (the reference's answers);
    a state the contracts do not define: 400 ``invalid_metadata_state``.
    """
    if state in DECRYPTABLE_STATES:
        return
    if state in _DECRYPT_REFUSALS:
        message, code = _DECRYPT_REFUSALS[MetadataState(state)]
        raise ForbiddenError(message, code=code)
    raise BadRequestError("Invalid MetadataState", code="invalid_metadata_state")


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


def _rule_matches(rule: object, who: str) -> bool:
    if not isinstance(rule, Mapping) or rule.get("type") != "address":
        raise NotConsumableError(
            "Access to this asset depends on credentials this provider does not check "
            "(only address rules are supported).", code="credential_not_supported")
    values = rule.get("values")
    if not isinstance(values, list):
        raise NotConsumableError("Asset malformed: credentials without values.",
                                 code="asset_malformed")
    return who in {str(v).lower() for v in values} or "*" in values


def _check_rules(credentials: Mapping[str, Any], did: str, who: str) -> None:
    """ddo-js's ``Credentials``: ``allow``/``deny`` lists of rules, ``match_allow``
    (default ``all``: every allow rule must match) and ``match_deny`` (default ``any``)."""
    allow = credentials.get("allow") or []
    deny = credentials.get("deny") or []
    if not isinstance(allow, list) or not isinstance(deny, list):
        raise NotConsumableError("Asset malformed: credentials must be lists.",
                                 code="asset_malformed")
    if deny:
        hits = [_rule_matches(rule, who) for rule in deny]
        if all(hits) if credentials.get("match_deny") == "all" else any(hits):
            raise NotConsumableError(
                f"Error: Access to asset {did} was denied with code: "
                "ConsumableCodes.CREDENTIAL_IN_DENY_LIST.", code="credential_in_deny_list")
    if allow:
        hits = [_rule_matches(rule, who) for rule in allow]
        if not (any(hits) if credentials.get("match_allow") == "any" else all(hits)):
            raise NotConsumableError(
                f"Error: Access to asset {did} was denied with code: "
                "ConsumableCodes.CREDENTIAL_NOT_IN_ALLOW_LIST.",
                code="credential_not_in_allow_list")


def check_credentials(asset: Asset, consumer: str) -> None:
    """Allow list (if non-empty) must contain the consumer; else the deny list must not.

    Classic DDOs keep the reference's reading (the first address rule of each list);
    the newer versions are read by :func:`_check_rules`.
    """
    if asset.layout.indexed_metadata:
        _check_rules(asset.credentials, asset.did, consumer.lower())
        return
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


def check_service_credentials(asset: Asset, service: Service, consumer: str) -> None:
    """A service's own ``credentials`` (ddo-js 4.7.0+ and 5.x, as Ocean Node checks them
    after the asset's): the same rules. Classic services have none the reference read."""
    credentials = service.raw.get("credentials")
    if asset.layout.indexed_metadata and isinstance(credentials, Mapping):
        _check_rules(credentials, asset.did, consumer.lower())


async def check_consumable(chain: ChainConfig, asset: Asset, consumer: str,
                           service: Service | None = None) -> None:
    """Raise NotConsumableError unless ``consumer`` may consume ``asset`` (and ``service``,
    when given) now.

    The indexed state is checked first (no chain call for a disabled asset), then the
    credentials (the asset's, then the service's), then the NFT's current state on chain
    (a revocation since indexing).
    """
    if not asset.metadata or asset.nft_state not in CONSUMABLE_STATES:
        raise NotConsumableError(
            f"Error: Access to asset {asset.did} was denied with code: "
            "ConsumableCodes.ASSET_DISABLED.", code="asset_disabled")
    check_credentials(asset, consumer)
    if service is not None:
        check_service_credentials(asset, service, consumer)
    if await metadata_state(chain, asset.nft_address) not in CONSUMABLE_STATES:
        raise NotConsumableError("Asset is not consumable.")
