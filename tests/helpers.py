"""Test helpers: signing the way the real clients do."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys
from eth_utils import keccak

# Public barge / ganache development keys (never used outside tests).
PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
CONSUMER_KEY = "0x5d75837394b078ce97bc289fa8d75e21000573520bfa7784a9d28ccaae602bf8"
OTHER_KEY = "0xef4b441145c1d0f3b4bc6d61d29f5c6e502359481152f869247c7a4244d45209"
PROVIDER_ADDRESS = Account.from_key(PROVIDER_KEY).address
CONSUMER_ADDRESS = Account.from_key(CONSUMER_KEY).address
OTHER_ADDRESS = Account.from_key(OTHER_KEY).address


def sign_like_ocean_py(message: str, private_key: str) -> str:
    """ocean.py 3.1.2 / Aquarius: manual EIP-191 prefix, eth_keys, v = 0/1."""
    digest = keccak(text=message)
    prefixed = keccak(b"\x19Ethereum Signed Message:\n32" + digest)
    signature = keys.PrivateKey(bytes.fromhex(private_key[2:])).sign_msg_hash(prefixed)
    return str(signature)


def sign_like_ocean_js(message: str, private_key: str) -> str:
    """ocean.js 3.x: ethers signMessage(arrayify(keccak(utf8))), v = 27/28."""
    digest = keccak(text=message)
    signed = Account.sign_message(encode_defunct(primitive=digest), private_key)
    return "0x" + bytes(signed.signature).hex()


def sign_like_ocean_js8(message: str, private_key: str) -> str:
    """ocean.js 6-8 (``signRequest``): ``signer.signMessage(toBeArray(keccak(utf8)))``.

    ``toBeArray`` reads the digest as a number: leading zero bytes are dropped, so a
    digest that starts with 0x00 is signed as 31 bytes ("...Message:\n31"). v = 27/28.
    """
    digest = keccak(text=message).lstrip(b"\x00")
    signed = Account.sign_message(encode_defunct(primitive=digest), private_key)
    return "0x" + bytes(signed.signature).hex()


def sign_node_hex_text(message: str, private_key: str) -> str:
    """Ocean Node's other accepted reading: ``signMessage`` of the digest's 0x-hex text."""
    signed = Account.sign_message(encode_defunct(text="0x" + keccak(text=message).hex()),
                                  private_key)
    return "0x" + bytes(signed.signature).hex()
