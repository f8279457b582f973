"""Decrypting ``services[].files`` per DDO version, with the datatoken and NFT binding."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from tests.chain_fixtures import ChainHarness
from tests.helpers import CONSUMER_KEY, OTHER_ADDRESS, PROVIDER_KEY

from tidegate.assets.ddo import Asset, did_for
from tidegate.crypto import ecies
from tidegate.files.service_files import FilesUnavailableError, decrypt_service_files

NFT = "0x" + "ab" * 20
DATATOKEN = "0x" + "cd" * 20
FILES = [{"type": "url", "url": "https://secret.example/data.csv", "method": "GET"},
         {"type": "ipfs", "hash": "QmSecret"}]


def encrypt(value: Any, key: str = PROVIDER_KEY) -> str:
    plain = value if isinstance(value, bytes) else json.dumps(value).encode()
    return "0x" + ecies.encrypt(ecies.public_key_hex(key), plain).hex()


def asset_with(files: str, version: str | None) -> Asset:
    fields: dict[str, Any] = {
        "chainId": 8996, "nftAddress": NFT,
        "services": [{"id": "0", "type": "access", "datatokenAddress": DATATOKEN,
                      "serviceEndpoint": "http://provider", "files": files, "timeout": 0}],
    }
    if version is not None and version.startswith("5."):
        # DDO 5.x (ddo-js): a did:ope: id, the fields in its credential subject.
        did = did_for(NFT, 8996, "did:ope:")
        return Asset.parse({"id": did, "version": version,
                            "credentialSubject": {"id": did, **fields}})
    raw: dict[str, Any] = {"id": did_for(NFT, 8996), **fields}
    if version is not None:
        raw["version"] = version
    return Asset.parse(raw)


def decrypt(files: str, version: str | None) -> list[dict[str, Any]]:
    asset = asset_with(files, version)
    return decrypt_service_files(asset, asset.service("0"), PROVIDER_KEY)


@pytest.mark.parametrize("version", ["4.0.0", None])
def test_plain_list_for_4_0_0(version: str | None) -> None:
    assert decrypt(encrypt(FILES), version) == FILES
    with pytest.raises(FilesUnavailableError):  # the 4.1.0 object is not a list
        decrypt(encrypt({"datatokenAddress": DATATOKEN, "nftAddress": NFT, "files": FILES}),
                version)


@pytest.mark.parametrize("version", ["4.1.0", "4.3.0", "5.0.0"])
def test_bound_object_for_later_versions(version: str) -> None:
    bound = {"datatokenAddress": DATATOKEN.upper().replace("0X", "0x"),
             "nftAddress": NFT, "files": FILES}
    assert decrypt(encrypt(bound), version) == FILES  # addresses compared checksummed
    with pytest.raises(FilesUnavailableError):  # a plain list is refused: no binding
        decrypt(encrypt(FILES), version)


@pytest.mark.parametrize("plaintext", [
    {"datatokenAddress": OTHER_ADDRESS, "nftAddress": NFT, "files": FILES},
    {"datatokenAddress": DATATOKEN, "nftAddress": OTHER_ADDRESS, "files": FILES},
    {"datatokenAddress": "not an address", "nftAddress": NFT, "files": FILES},
    {"nftAddress": NFT, "files": FILES},
    {"datatokenAddress": DATATOKEN, "files": FILES},
    {"datatokenAddress": DATATOKEN, "nftAddress": NFT},
    {"datatokenAddress": DATATOKEN, "nftAddress": NFT, "files": {"type": "url"}},
    {"datatokenAddress": DATATOKEN, "nftAddress": NFT, "files": ["not an object"]},
    b"not json",
    b"\xff\xfe",
])
def test_mismatches_and_malformed_plaintexts_are_refused(
    plaintext: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FilesUnavailableError) as caught:
        decrypt(encrypt(plaintext), "4.1.0")
    assert (caught.value.status, caught.value.code) == (400, "files_unavailable")
    assert caught.value.message == "Unable to get dataset files"
    assert "secret" not in caplog.text  # the plaintext is never logged


@pytest.mark.parametrize("files", [
    encrypt(FILES, CONSUMER_KEY),  # encrypted for another provider
    "0xnot-hex",
    "0x",
    "",
    encrypt(FILES)[:-4],  # truncated
])
def test_undecryptable_files_are_refused(files: str) -> None:
    with pytest.raises(FilesUnavailableError):
        decrypt(files, "4.0.0")


def test_a_published_asset(harness: ChainHarness) -> None:
    files = [{"type": "url", "url": harness.origin + "/data.csv"},
             {"type": "url", "url": harness.origin + "/algo.py", "method": "get"}]
    published = harness.publish(files=files, services=("access", "compute"))
    asset = Asset.parse(published.ddo)
    assert asset.version == "4.1.0"
    for service in asset.services:
        assert decrypt_service_files(asset, service, PROVIDER_KEY) == files
    # Copying the encrypted files into another asset's DDO does not work.
    other = harness.publish(name="other")
    thief = dict(other.ddo)
    thief["services"] = [{**other.ddo["services"][0],
                          "files": published.ddo["services"][0]["files"]}]
    stolen = Asset.parse(thief)
    with pytest.raises(FilesUnavailableError):
        decrypt_service_files(stolen, stolen.services[0], PROVIDER_KEY)
