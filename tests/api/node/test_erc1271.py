"""ERC-1271 smart accounts sign Ocean Node's messages too (a real wallet contract on the
dev chain, owned by a key; the owner signs the hash the wallet is asked about)."""

import httpx
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils import keccak

from tests.api.node import oceanjs8
from tests.chain_fixtures import ChainHarness
from tests.fake_contracts import deploy_runtime, erc1271_wallet_runtime
from tests.helpers import CONSUMER_KEY, OTHER_ADDRESS, OTHER_KEY

DDO = {"id": "did:op:1"}


def sign_hash(digest: bytes, key: str) -> str:
    return "0x" + bytes(Account.unsafe_sign_hash(digest, key).signature).hex()


async def test_smart_account_signatures(harness: ChainHarness,
                                        chain_client: httpx.AsyncClient) -> None:
    wallet = deploy_runtime(harness.chain.w3, harness.consumer,
                            erc1271_wallet_runtime(OTHER_ADDRESS))

    async def encrypt(nonce: str, signature: str) -> httpx.Response:
        return await oceanjs8.encrypt(chain_client, DDO, address=wallet, nonce=nonce,
                                      signature=signature)

    # The EIP-191 hash of the message (what smart wallets check) ...
    message = wallet + "1" + "encrypt"
    eip191 = _hash_eip191_message(encode_defunct(text=message))
    r = await encrypt("1", sign_hash(eip191, OTHER_KEY))
    assert r.status_code == 200, r.text
    # ... or the message's keccak (Ocean Node's first question to the wallet).
    r = await encrypt("2", sign_hash(keccak(text=wallet + "2encrypt"), OTHER_KEY))
    assert r.status_code == 200, r.text
    # The wallet refuses a signature by another key, or over another message.
    r = await encrypt("3", sign_hash(_hash_eip191_message(encode_defunct(
        text=wallet + "3encrypt")), CONSUMER_KEY))
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    r = await encrypt("3", sign_hash(_hash_eip191_message(encode_defunct(
        text=wallet + "3download")), OTHER_KEY))
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    # Refusals used no nonce; the replayed nonce is refused by the nonce check.
    r = await encrypt("2", sign_hash(keccak(text=wallet + "2encrypt"), OTHER_KEY))
    assert (r.status_code, r.json()["code"]) == (401, "nonce_too_low")
    # A key's own address is no smart account: the owner's hash signature is not its.
    r = await oceanjs8.encrypt(chain_client, DDO, address=OTHER_ADDRESS, nonce="1",
                               signature=sign_hash(keccak(text=OTHER_ADDRESS + "1encrypt"),
                                                   CONSUMER_KEY))
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
