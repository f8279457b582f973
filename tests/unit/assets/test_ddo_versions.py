"""DDO versions as ddo-js 0.2.0 defines them (4.1.0 … 4.7.0, 5.0.0): layout, DID, the
fields a provider reads, validation, ocean.js 8's validate hash, credentials rules.

The vectors are written here from ddo-js's types (``src/@types/DDO4``, ``DDO5``) and
its 5.0.0 schema's required fields; the JavaScript texts were produced by node 20's
``JSON.stringify`` (pinned below as literals).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_utils import to_checksum_address

from tidegate.assets.consumability import (
    NotConsumableError,
    check_credentials,
    check_service_credentials,
)
from tidegate.assets.ddo import Asset, MalformedAssetError, did_for
from tidegate.assets.indexer_stats import format_ether
from tidegate.assets.validation import ddo_problems, document_bytes, validation_proof
from tidegate.assets.versions import Layout, js_stringify, layout, subject

KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
NFT = to_checksum_address("0x1f0b6c6dcc1b2b1be32e8b0bb48b0e0c0b6fd4aa")
DT = to_checksum_address("0x2a6b0b3c1f4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f")
ALICE = to_checksum_address("0x00000000000000000000000000000000000a11ce")


def v4_ddo(version: str = "4.1.0") -> dict[str, Any]:
    return {
        "@context": ["https://w3id.org/did/v1"], "id": did_for(NFT, 8996),
        "version": version, "chainId": 8996, "nftAddress": NFT,
        "metadata": {"created": "2026-12-01T10:00:00Z", "updated": "2026-12-01T10:00:00Z",
                     "type": "dataset", "name": "tide tables", "description": "hourly",
                     "author": "harbour", "license": "CC0-1.0"},
        "services": [{"id": "svc-0", "type": "access", "files": "0xabcd",
                      "datatokenAddress": DT, "serviceEndpoint": "http://tidegate",
                      "timeout": 3600}],
        "credentials": {"allow": [], "deny": []},
    }


def v5_ddo() -> dict[str, Any]:
    did = did_for(NFT, 8996, "did:ope:")
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": did, "version": "5.0.0", "type": ["VerifiableCredential"],
        "issuer": "did:op:" + "ee" * 32,
        "credentialSubject": {
            "id": did, "chainId": 8996, "nftAddress": NFT,
            "metadata": {"created": "2026-12-01T10:00:00Z", "updated": "2026-12-01T10:00:00Z",
                         "type": "dataset", "name": "tide tables", "providedBy": "harbour",
                         "description": {"@value": "hourly", "@language": "en"},
                         "license": {"name": "CC0-1.0"}},
            "services": [{"id": "svc-0", "type": "access", "name": "download",
                          "files": "0xabcd", "datatokenAddress": DT,
                          "serviceEndpoint": "http://tidegate", "timeout": 3600, "state": 0,
                          "credentials": {}}],
            "credentials": {"allow": [], "deny": []},
        },
    }


@pytest.mark.parametrize(("version", "expected"), [
    ("4.1.0", Layout.CLASSIC), ("4.3.0", Layout.CLASSIC), ("4.5.0", Layout.CLASSIC),
    ("4.0.0", Layout.CLASSIC), ("4.7.0", Layout.V4_INDEXED), ("4.10.1", Layout.V4_INDEXED),
    ("5.0.0", Layout.V5), (None, Layout.CLASSIC), ("four", Layout.CLASSIC),
])
def test_layout_by_version(version: str | None, expected: Layout) -> None:
    assert layout({"version": version}) is expected


def test_did_of_a_v5_ddo_uses_did_ope_with_the_same_digest() -> None:
    v4, v5 = did_for(NFT, 8996), did_for(NFT, 8996, "did:ope:")
    assert v5 == "did:ope:" + v4.removeprefix("did:op:")
    assert v4 == "did:op:" + hashlib.sha256((NFT + "8996").encode()).hexdigest()
    assert len(v5) == 72  # the 5.0.0 schema's exact length


def test_v5_fields_are_read_from_the_credential_subject() -> None:
    ddo = {**v5_ddo(), "indexedMetadata": {"nft": {"state": 5, "owner": ALICE}}}
    assert subject(ddo) is ddo["credentialSubject"]
    asset = Asset.parse(ddo)
    assert (asset.did, asset.chain_id, asset.nft_address) == (ddo["id"], 8996, NFT)
    assert asset.layout is Layout.V5
    assert [s.id for s in asset.services] == ["svc-0"]
    assert asset.service("svc-0").datatoken == DT
    assert (asset.nft_state, asset.nft_owner) == (5, ALICE)
    assert asset.metadata["providedBy"] == "harbour"


def test_a_v5_ddo_with_a_did_op_id_is_malformed() -> None:
    with pytest.raises(MalformedAssetError):
        Asset.parse({**v5_ddo(), "id": did_for(NFT, 8996)})


def test_a_classic_ddo_ignores_a_published_indexed_metadata() -> None:
    """The state of a classic DDO is the indexer's Aquarius ``nft``: an ``indexedMetadata``
    its publisher wrote says nothing."""
    ddo = {**v4_ddo(), "nft": {"state": 4}, "indexedMetadata": {"nft": {"state": 0}}}
    assert Asset.parse(ddo).nft_state == 4
    indexed = {**v4_ddo("4.7.0"), "nft": {"state": 0}, "indexedMetadata": {"nft": {"state": 4}}}
    assert Asset.parse(indexed).nft_state == 4


def test_valid_vectors_of_each_version() -> None:
    for version in ("4.1.0", "4.3.0", "4.5.0", "4.7.0"):
        assert ddo_problems(v4_ddo(version)) == {}, version
    assert ddo_problems(v5_ddo()) == {}
    # The indexer's own field is not the publisher's to get right.
    assert ddo_problems({**v5_ddo(), "indexedMetadata": {"stats": "x"}}) == {}


@pytest.mark.parametrize(("change", "field"), [
    ({"id": did_for(NFT, 8996)}, "id"),
    ({"id": "did:ope:" + "0" * 64}, "id"),
    ({"issuer": None}, "issuer"),
    ({"credentialSubject": None}, "credentialSubject"),
    ({"cs": {"chainId": "8996"}}, "credentialSubject.chainId"),
    ({"cs": {"nftAddress": "0x12"}}, "credentialSubject.nftAddress"),
    ({"cs": {"metadata": {"name": "x"}}}, "credentialSubject.metadata.providedBy"),
    ({"cs": {"services": []}}, "credentialSubject.services"),
    ({"cs": {"services": [{"id": "0", "type": "access"}]}},
     "credentialSubject.services[0].datatokenAddress"),
    ({"cs": {"services": [{"id": "0", "type": "access", "datatokenAddress": DT,
                           "serviceEndpoint": "x", "timeout": "60"}]}},
     "credentialSubject.services[0].timeout"),
])
def test_each_v5_problem_is_named(change: dict[str, Any], field: str) -> None:
    ddo = v5_ddo()
    if "cs" in change:
        ddo["credentialSubject"] = {**ddo["credentialSubject"], **change.pop("cs")}
    ddo.update(change)
    assert field in ddo_problems(ddo)


# JSON.stringify(value) in node 20, for each value as parsed from JSON.
JS_TEXTS = [
    ({"b": 1, "a": [1.5, 0.1, 1e21, 1e-7, 123456789012345680000, 0.000001, 100.0, -2.5e-10]},
     '{"b":1,"a":[1.5,0.1,1e+21,1e-7,123456789012345680000,0.000001,100,-2.5e-10]}'),
    ({"t": "é \"q\" \\ \n\t\u0001\u2028 ☃"}, '{"t":"é \\"q\\" \\\\ \\n\\t\\u0001\u2028 ☃"}'),
    ([None, True, False, {}, []], "[null,true,false,{},[]]"),
]


@pytest.mark.parametrize(("value", "text"), JS_TEXTS)
def test_js_stringify_writes_what_javascript_writes(value: Any, text: str) -> None:
    assert js_stringify(value) == text


def test_ocean_js8_validate_hash_is_of_the_text_it_encrypts() -> None:
    """ocean.js 8 encrypts ``JSON.stringify(ddo)`` and puts the validate hash on chain:
    the indexer checks the decrypted bytes against it, so both must be the same text."""
    ddo = v5_ddo()
    text = js_stringify(ddo).encode()
    proof = validation_proof(document_bytes(ddo), ddo, KEY)
    assert proof["hash"] == "0x" + hashlib.sha256(text).hexdigest()


def _asset(credentials: dict[str, Any], version: str = "4.7.0") -> Asset:
    return Asset.parse({**v4_ddo(version), "credentials": credentials})


def test_new_versions_check_every_rule_and_match_modes() -> None:
    bob = "0x" + "b0" * 20
    both = {"allow": [{"type": "address", "values": [ALICE.lower()]},
                      {"type": "address", "values": [bob]}]}
    with pytest.raises(NotConsumableError) as refused:
        check_credentials(_asset(both), ALICE)  # match_allow defaults to "all"
    assert refused.value.code == "credential_not_in_allow_list"
    check_credentials(_asset({**both, "match_allow": "any"}), ALICE)
    deny = {"deny": [{"type": "address", "values": [ALICE]}]}
    with pytest.raises(NotConsumableError) as denied:
        check_credentials(_asset(deny), ALICE)
    assert denied.value.code == "credential_in_deny_list"
    check_credentials(_asset(deny), bob)
    check_credentials(_asset({"allow": [], "deny": []}), bob)


@pytest.mark.parametrize("rule", [
    {"type": "accessList", "chainId": 8996, "accessList": "0x" + "11" * 20},
    {"type": "verifiableCredential", "requestCredentials": ["VerifiableId"]},
    {"request_credentials": [{"type": "VerifiableId"}]},
])
def test_rules_tidegate_cannot_evaluate_refuse_access(rule: dict[str, Any]) -> None:
    """An access list or a credential request is not checked here: refuse, never serve."""
    for kind in ("allow", "deny"):
        with pytest.raises(NotConsumableError) as refused:
            check_credentials(_asset({kind: [rule]}), ALICE)
        assert refused.value.code == "credential_not_supported"
    with pytest.raises(NotConsumableError):
        check_credentials(Asset.parse({**v5_ddo(), "credentialSubject": {
            **v5_ddo()["credentialSubject"], "credentials": {"allow": [rule]}}}), ALICE)


def test_classic_credentials_keep_the_reference_reading() -> None:
    """Classic DDOs: unchanged (the first address rule; other rule types ignored)."""
    rules = {"allow": [{"type": "accessList", "accessList": "0x" + "11" * 20}]}
    check_credentials(_asset(rules, "4.1.0"), ALICE)
    with pytest.raises(NotConsumableError):
        check_credentials(_asset({"allow": [{"type": "address", "values": ["0x" + "b0" * 20]}]},
                                 "4.1.0"), ALICE)


@pytest.mark.parametrize(("wei", "text"), [
    (10**18, "1.0"), (15 * 10**17, "1.5"), (0, "0.0"), (1, "0.000000000000000001"),
    (123 * 10**18 + 45 * 10**14, "123.0045")])
def test_prices_are_written_as_ethers_format_ether(wei: int, text: str) -> None:
    """Ocean Node writes ``ethers.formatEther(rate)`` (values checked with ethers 6)."""
    assert format_ether(wei) == text


def test_a_v5_service_s_own_credentials_are_checked() -> None:
    ddo = v5_ddo()
    ddo["credentialSubject"]["services"][0]["credentials"] = {
        "allow": [{"type": "address", "values": [ALICE]}]}
    asset = Asset.parse(ddo)
    check_service_credentials(asset, asset.services[0], ALICE)
    with pytest.raises(NotConsumableError) as refused:
        check_service_credentials(asset, asset.services[0], "0x" + "b0" * 20)
    assert refused.value.code == "credential_not_in_allow_list"
    # A classic service's credentials were never read: unchanged.
    classic = Asset.parse({**v4_ddo(), "services": [{
        **v4_ddo()["services"][0], "credentials": {"allow": [{"type": "accessList"}]}}]})
    check_service_credentials(classic, classic.services[0], ALICE)
