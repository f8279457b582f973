"""DDO schema checks (v4 and v5) and the validator proof that ``setMetaData`` verifies.

ocean.py asks the metadata cache to validate a DDO before publishing and passes the
answer to ``setMetaData`` as a proof: ``validatorAddress`` must have signed (EIP-191
over the 32 bytes) the document hash, which is the sha256 of the exact bytes posted.
ocean.js 8 posts ``{ddo, publisherAddress, nonce, signature}`` instead and stores the
hash it gets back, which must then be the sha256 of ``JSON.stringify(ddo)`` (what it
encrypted): :func:`document_bytes`.

The checks are the required fields of ddo-js 0.2.0's schemas (4.1.0–4.7.0 and
5.0.0), not its whole SHACL validation: what a provider and ocean.js read must be
there and well typed; an ``indexedMetadata`` key is ignored (the indexer writes it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct

from tidegate.assets.ddo import METADATA_REQUIRED, SERVICE_REQUIRED, did_for
from tidegate.assets.versions import Layout, js_stringify, layout
from tidegate.errors import ValidationError
from tidegate.types import is_address

V5_METADATA_REQUIRED: Final = ("created", "updated", "name", "providedBy")
"""Keys ``credentialSubject.metadata`` must have (ddo-js 5.0.0 schema)."""
V5_SERVICE_REQUIRED: Final = ("id", "type", "datatokenAddress", "serviceEndpoint", "timeout")


def document_bytes(ddo: Any) -> bytes:
    """The bytes ocean.js 8 encrypts and hashes for ``ddo``: ``JSON.stringify(ddo)``."""
    return js_stringify(ddo).encode("utf-8")


def _v5_problems(ddo: Mapping[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for key in ("issuer", "version"):
        if not isinstance(ddo.get(key), str):
            problems[key] = f"The {key} is required."
    if "type" not in ddo:
        problems["type"] = "The type is required."
    cs = ddo.get("credentialSubject")
    if not isinstance(cs, Mapping):
        problems["credentialSubject"] = "The credentialSubject object is required."
        return problems
    chain_id, nft = cs.get("chainId"), cs.get("nftAddress")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        problems["credentialSubject.chainId"] = "The chainId must be an integer."
    if not isinstance(nft, str) or not is_address(nft):
        problems["credentialSubject.nftAddress"] = "The nftAddress must be an address."
    did = ddo.get("id")
    if not isinstance(did, str) or not did.startswith(Layout.V5.did_prefix):
        problems["id"] = "The id must be a did:ope DID."
    elif isinstance(nft, str) and "credentialSubject.nftAddress" not in problems \
            and isinstance(chain_id, int) and "credentialSubject.chainId" not in problems \
            and did != did_for(nft, chain_id, Layout.V5.did_prefix):
        problems["id"] = "The id is not did:ope: + sha256(nftAddress + chainId)."
    metadata = cs.get("metadata")
    if not isinstance(metadata, Mapping):
        problems["credentialSubject.metadata"] = "The metadata object is required."
    else:
        for key in V5_METADATA_REQUIRED:
            if key not in metadata:
                problems[f"credentialSubject.metadata.{key}"] = f"The {key} field is required."
    services = cs.get("services")
    if not isinstance(services, list) or not services:
        problems["credentialSubject.services"] = "At least one service is required."
        return problems
    for i, service in enumerate(services):
        where = f"credentialSubject.services[{i}]"
        if not isinstance(service, Mapping):
            problems[where] = "A service must be an object."
            continue
        for key in V5_SERVICE_REQUIRED:
            if key not in service:
                problems[f"{where}.{key}"] = f"The {key} field is required."
        timeout = service.get("timeout")
        if "timeout" in service and (not isinstance(timeout, int) or isinstance(timeout, bool)):
            problems[f"{where}.timeout"] = "The timeout must be an integer."
    return problems


def ddo_problems(ddo: Any) -> dict[str, str]:
    """Field -> problem for everything a DDO of its version must have (empty when valid)."""
    if not isinstance(ddo, Mapping):
        return {"ddo": "The DDO must be a JSON object."}
    if layout(ddo) is Layout.V5:
        return _v5_problems(ddo)
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
