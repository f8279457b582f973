"""assets/validation.py: the DDO checks and the proof ``setMetaData`` verifies, against a
fixed vector computed with another implementation (eth_keys over the EIP-191 digest)."""

import hashlib
import json

import pytest
from eth_keys import keys
from eth_utils import keccak

from tidegate.assets.ddo import METADATA_REQUIRED, SERVICE_REQUIRED, did_for
from tidegate.assets.validation import ddo_problems, validation_proof
from tidegate.errors import ValidationError

# barge's provider key (public)
KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
NFT = "0x" + "12" * 20


def valid_ddo() -> dict[str, object]:
    return {
        "@context": ["https://w3id.org/did/v1"], "id": did_for(NFT, 8996), "version": "4.1.0",
        "chainId": 8996, "nftAddress": NFT,
        "metadata": {k: "dataset" if k == "type" else "x" for k in METADATA_REQUIRED},
        "services": [{k: "access" if k == "type" else "0" for k in SERVICE_REQUIRED}],
    }


def test_a_valid_ddo_has_no_problems() -> None:
    assert ddo_problems(valid_ddo()) == {}


def test_the_proof_matches_an_independent_signature() -> None:
    body = json.dumps(valid_ddo(), separators=(",", ":")).encode()
    proof = validation_proof(body, json.loads(body), KEY)
    digest = hashlib.sha256(body).digest()
    assert proof["hash"] == "0x" + digest.hex()
    # EIP-191 "personal message" over the 32 raw digest bytes, signed with eth_keys.
    signed = keys.PrivateKey(bytes.fromhex(KEY[2:])).sign_msg_hash(
        keccak(b"\x19Ethereum Signed Message:\n32" + digest))
    assert proof["r"] == ["0x" + signed.r.to_bytes(32, "big").hex()]
    assert proof["s"] == ["0x" + signed.s.to_bytes(32, "big").hex()]
    assert proof["v"] == signed.v + 27
    assert proof["publicKey"] == "0xe08A1dAe983BC701D05E492DB80e0144f8f4b909"


def test_fixed_vector() -> None:
    # sha256(b"{}") is a published constant; the signature is deterministic (RFC 6979).
    ddo = valid_ddo()
    proof = validation_proof(b"{}", ddo, KEY)
    assert proof["hash"] == "0x44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    # Pinned: a change of signing library or digest construction must show up here.
    assert (proof["v"], proof["r"], proof["s"]) == (
        27, ["0x71e60270f5f2741258782b24fa1ac039a93e641c4d76ae749522b1d75cbddbbb"],
        ["0x18292fe89c94694f91ec40a8860e08c63bf1223010c9026bf4b1725bf0bfbad5"])


@pytest.mark.parametrize(("change", "field"), [
    ({"chainId": "8996"}, "chainId"),
    ({"nftAddress": "0x12"}, "nftAddress"),
    ({"id": "did:op:" + "00" * 32}, "id"),
    ({"metadata": {}}, "metadata.name"),
    ({"services": []}, "services"),
    ({"services": [{"type": "other"}]}, "services[0].type"),
])
def test_each_problem_is_named(change: dict[str, object], field: str) -> None:
    ddo = {**valid_ddo(), **change}
    assert field in ddo_problems(ddo)
    with pytest.raises(ValidationError) as caught:
        validation_proof(b"{}", ddo, KEY)
    assert field in caught.value.errors
