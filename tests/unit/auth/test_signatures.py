import pytest

from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    sign_like_ocean_js,
    sign_like_ocean_py,
)
from tidegate.auth.signatures import (
    InvalidSignatureError,
    decrypt_message,
    message_digest,
    recover_signer,
    sign_message,
    verify_signer,
)

MESSAGE = "did:op:0c184915b07b44c888d468be85a9b28253e80070e5294b1aaed81c2f0264e4301700000000"


def test_digest_is_keccak_of_utf8_pinned_vector() -> None:
    assert message_digest("abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )


def test_ocean_py_signature_v0_v1_verifies() -> None:
    sig = sign_like_ocean_py(MESSAGE, CONSUMER_KEY)
    assert sig[-2:] in ("00", "01")
    assert recover_signer(MESSAGE, sig) == CONSUMER_ADDRESS


def test_ocean_js_signature_v27_v28_verifies() -> None:
    sig = sign_like_ocean_js(MESSAGE, CONSUMER_KEY)
    assert sig[-2:] in ("1b", "1c")
    assert recover_signer(MESSAGE, sig) == CONSUMER_ADDRESS
    # Both encodings carry the same r, s.
    assert sig[:130] == sign_like_ocean_py(MESSAGE, CONSUMER_KEY)[:130]


def test_tidegate_signer_matches_ocean_js() -> None:
    assert sign_message(MESSAGE, CONSUMER_KEY) == sign_like_ocean_js(MESSAGE, CONSUMER_KEY)


def test_claimed_address_in_any_case() -> None:
    sig = sign_like_ocean_js(MESSAGE, CONSUMER_KEY)
    verify_signer(MESSAGE, sig, CONSUMER_ADDRESS.lower())


def test_tampered_message_is_rejected() -> None:
    sig = sign_like_ocean_js(MESSAGE, CONSUMER_KEY)
    with pytest.raises(InvalidSignatureError):
        verify_signer(MESSAGE + "1", sig, CONSUMER_ADDRESS)


def test_wrong_address_is_rejected() -> None:
    sig = sign_like_ocean_js(MESSAGE, CONSUMER_KEY)
    with pytest.raises(InvalidSignatureError):
        verify_signer(MESSAGE, sig, OTHER_ADDRESS)


@pytest.mark.parametrize("bad", ["0x1234", "0x" + "zz" * 65, "", "0x" + "00" * 64 + "05"])
def test_malformed_signatures_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidSignatureError) as info:
        recover_signer(MESSAGE, bad)
    assert info.value.status == 401


def test_signing_over_hex_text_is_not_accepted() -> None:
    # The 66-char hex string is a different message than the 32 digest bytes.
    from eth_account import Account
    from eth_account.messages import encode_defunct

    wrong = Account.sign_message(
        encode_defunct(text="0x" + message_digest(MESSAGE).hex()), CONSUMER_KEY
    )
    assert recover_signer(MESSAGE, "0x" + bytes(wrong.signature).hex()) != CONSUMER_ADDRESS


def test_decrypt_message_uses_tx_or_nft() -> None:
    assert decrypt_message("0xtx", "0xnft", "0xd", "8996") == "0xtx0xd8996"
    assert decrypt_message(None, "0xnft", "0xd", "8996") == "0xnft0xd8996"
    assert decrypt_message("", "0xnft", "0xd", "8996") == "0xnft0xd8996"


SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_recovery_agrees_with_eth_account_over_many_keys_and_messages() -> None:
    # recover_signer uses libsecp256k1 (coincurve) directly; eth_account is the oracle.
    from eth_account import Account
    from eth_account.messages import encode_defunct

    for i in range(40):
        key = (i + 1).to_bytes(32, "big") if i < 5 else message_digest(f"key {i}")
        message = f"did:op:{i:064x}" + str(i * 7919) + "é" * (i % 3)
        sig = sign_message(message, "0x" + key.hex())
        expected = Account.recover_message(
            encode_defunct(primitive=message_digest(message)), signature=sig)
        assert recover_signer(message, sig) == expected == Account.from_key(key).address


@pytest.mark.parametrize("r, s", [(0, 1), (1, 0), (SECP256K1_ORDER, 1), (1, SECP256K1_ORDER),
                                  (2**256 - 1, 1)])
def test_out_of_range_r_or_s_is_rejected(r: int, s: int) -> None:
    bad = "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + "1b"
    with pytest.raises(InvalidSignatureError):
        recover_signer(MESSAGE, bad)
