"""DDO v4 schema checks and the validator proof that ``setMetaData`` verifies.

ocean.py asks the metadata cache to validate a DDO before publishing and passes the
answer to ``setMetaData`` as a proof: ``validatorAddress`` must have signed (EIP-191
over the 32 bytes) the document hash, which is the sha256 of the exact bytes posted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from tidegate.assets.ddo import METADATA_REQUIRED, SERVICE_REQUIRED, did_for
from tidegate.errors import ValidationError
from tidegate.types import is_address


def ddo_problems(ddo: Any) -> dict[str, str]:
    """Field -> problem for everything a v4 DDO must have (empty when valid)."""
    if not isinstance(ddo, Mapping):
        return {"ddo": "The DDO must be a JSON object."}
    problems: dict[str, str] = {}
    chain_id = ddo.get("chainId")
    nft = ddo.get("nftAddress")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        problems["chainId"] = "The chainId must be an integer."
    if not isinstance(nft, str) or not is_address(nft):
        problems["nftAddress"] = "The nftAddress must be an address."
    did = ddo.get("id")
    if not isinstance(did, str) or not did.startswith("did:op:"):
        problems["id"] = "The id must be a did:op DID."
    elif "chainId" not in problems and "nftAddress" not in problems:
        assert isinstance(nft, str) and isinstance(chain_id, int)
        if did != did_for(nft, chain_id):
            problems["id"] = "The id is not sha256(nftAddress + chainId)."
    if not isinstance(ddo.get("version"), str):
        problems["version"] = "The version is required."
    metadata = ddo.get("metadata")
    if not isinstance(metadata, Mapping):
        problems["metadata"] = "The metadata object is required."
    else:
        for key in METADATA_REQUIRED:
            if key not in metadata:
                problems[f"metadata.{key}"] = f"The metadata.{key} field is required."
        if metadata.get("type") not in (None, "dataset", "algorithm"):
            problems["metadata.type"] = "The metadata.type must be dataset or algorithm."
    services = ddo.get("services")
    if not isinstance(services, list) or not services:
        problems["services"] = "At least one service is required."
    else:
        for i, service in enumerate(services):
            if not isinstance(service, Mapping):
                problems[f"services[{i}]"] = "A service must be an object."
                continue
            for key in SERVICE_REQUIRED:
                if key not in service:
                    problems[f"services[{i}].{key}"] = f"The {key} field is required."
            if service.get("type") not in (None, "access", "compute"):
                problems[f"services[{i}].type"] = "The type must be access or compute."
    return problems


def validation_proof(document: bytes, ddo: Any, validator_key: str) -> dict[str, Any]:
    """Check ``ddo`` and sign the sha256 of ``document``; raise ValidationError if invalid."""
    problems = ddo_problems(ddo)
    if problems:
        raise ValidationError(problems, "The DDO is not valid.")
    digest = hashlib.sha256(document).digest()
    signed = Account.sign_message(encode_defunct(primitive=digest), validator_key)
    return {
        "hash": "0x" + digest.hex(),
        "publicKey": Account.from_key(validator_key).address,
        "v": signed.v,
        "r": ["0x" + signed.r.to_bytes(32, "big").hex()],
        "s": ["0x" + signed.s.to_bytes(32, "big").hex()],
    }
