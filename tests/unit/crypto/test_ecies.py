import lzma
import os

import ecies
import pytest

from tests.helpers import PROVIDER_KEY
from tidegate.crypto import ecies as tg_ecies


@pytest.mark.parametrize(
    "plaintext",
    [b"x", os.urandom(1024 * 1024), lzma.compress(b'{"@context": ["https://w3id.org/did/v1"]}')],
    ids=["1-byte", "1-MiB-binary", "lzma"],
)
def test_round_trip_with_eciespy(plaintext: bytes) -> None:
    ciphertext = tg_ecies.encrypt(tg_ecies.public_key_hex(PROVIDER_KEY), plaintext)
    # The reference format: 65-byte ephemeral key, 16-byte nonce, 16-byte tag.
    assert len(ciphertext) == 97 + len(plaintext)
    assert ciphertext[0] == 4
    assert ecies.decrypt(PROVIDER_KEY[2:], ciphertext) == plaintext
    assert tg_ecies.decrypt(PROVIDER_KEY, ciphertext) == plaintext


def test_decrypt_failure_is_a_clear_error() -> None:
    with pytest.raises(tg_ecies.DecryptionFailedError):
        tg_ecies.decrypt(PROVIDER_KEY, b"\x04" + b"\x00" * 120)
