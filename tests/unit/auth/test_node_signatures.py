"""Ocean Node's signed message (ocean.js >= 6): ``address + nonce + command``, pinned."""

import pytest

from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    sign_like_ocean_js,
    sign_like_ocean_js8,
    sign_like_ocean_py,
    sign_node_hex_text,
)
from tidegate.auth.signatures import (
    InvalidSignatureError,
    message_digest,
    node_message,
    sign_node_message,
    signed_by,
)

#: keccak(CONSUMER_ADDRESS + "159" + "download") starts with a zero byte.
ZERO_NONCE = "159"


def test_message_is_address_nonce_command_as_received() -> None:
    assert node_message(CONSUMER_ADDRESS, "7", "download") == CONSUMER_ADDRESS + "7download"
    assert node_message(CONSUMER_ADDRESS.lower(), "1.5", "encrypt") == (
        CONSUMER_ADDRESS.lower() + "1.5encrypt")


def test_pinned_vectors() -> None:
    message = node_message(CONSUMER_ADDRESS, "1", "download")
    assert message_digest(message).hex() == (
        "f82365d1186d50c9f2fc38d719fdeb94fe3e75808c1e9898dcb55fe9aba1be55")
    # Computed with ethers 6.17 (ocean.js 8.6.2's signRequest) and pinned.
    assert sign_like_ocean_js8(message, CONSUMER_KEY) == (
        "0xefa7585e1de13bf0b6ec2481f68d0b7919db7eb993c8a34549f704153bf3fae8"
        "4e1955d384300a58876a129f5ac3a23a5904aa5ecfa35d0feaf0189de6d2b0881b")


def test_digest_with_a_leading_zero_byte() -> None:
    message = node_message(CONSUMER_ADDRESS, ZERO_NONCE, "download")
    digest = message_digest(message)
    assert digest[0] == 0
    # ocean.js 8 signs the 31 bytes; a correct client the 32: both are the consumer's.
    js8 = sign_like_ocean_js8(message, CONSUMER_KEY)
    # ethers 6.17 (what ocean.js 8.6.2 calls) gives exactly this for the message.
    assert js8 == (
        "0xae0d8cabf01b9f3da44f64d8011178775b3705b365ca4f1480705135b4097594"
        "6bca891dfd64f9618404b8d2f3affd51cd285aa7e7227cd82ca2e16a83f9222d1c")
    full = sign_like_ocean_js(message, CONSUMER_KEY)
    assert js8 != full
    for signature in (js8, full, sign_like_ocean_py(message, CONSUMER_KEY),
                      sign_node_hex_text(message, CONSUMER_KEY)):
        assert signed_by(CONSUMER_ADDRESS, signature, node_messages=(message,))
        assert not signed_by(OTHER_ADDRESS, signature, node_messages=(message,))


def test_every_reading_of_an_ordinary_digest() -> None:
    message = node_message(CONSUMER_ADDRESS, "2", "encrypt")
    assert message_digest(message)[0] != 0
    for signature in (sign_like_ocean_js8(message, CONSUMER_KEY),
                      sign_like_ocean_py(message, CONSUMER_KEY),
                      sign_node_hex_text(message, CONSUMER_KEY)):
        assert signed_by(CONSUMER_ADDRESS, signature, node_messages=(message,))


def test_tidegate_signs_like_ocean_js8() -> None:
    for nonce in ("1", ZERO_NONCE):
        message = node_message(CONSUMER_ADDRESS, nonce, "download")
        assert sign_node_message(message, CONSUMER_KEY) == sign_like_ocean_js8(
            message, CONSUMER_KEY)


def test_other_command_or_nonce_is_refused() -> None:
    signature = sign_like_ocean_js8(node_message(CONSUMER_ADDRESS, "3", "encrypt"),
                                    CONSUMER_KEY)
    for message in (node_message(CONSUMER_ADDRESS, "3", "download"),
                    node_message(CONSUMER_ADDRESS, "4", "encrypt")):
        assert not signed_by(CONSUMER_ADDRESS, signature, node_messages=(message,))


def test_the_hex_text_reading_is_not_accepted_for_classic_messages() -> None:
    # The classic protocol recovers over the 32 bytes only, as before.
    message = "did:op:1" + "5"
    signature = sign_node_hex_text(message, CONSUMER_KEY)
    assert not signed_by(CONSUMER_ADDRESS, signature, messages=(message,))
    assert signed_by(CONSUMER_ADDRESS, sign_like_ocean_py(message, CONSUMER_KEY),
                     messages=(message,))


def test_malformed_signature_raises() -> None:
    with pytest.raises(InvalidSignatureError):
        signed_by(CONSUMER_ADDRESS, "0x1234", node_messages=("x",))


def test_the_form_tried_first_never_changes_the_answer() -> None:
    """``node_first`` orders the recoveries (the authenticator passes the signer's last
    form); which form was signed, and whether any was, stays the same either way."""
    from tidegate.auth.signatures import signed_reading

    node = node_message(CONSUMER_ADDRESS, "7", "download")
    classic = "did:op:" + "ab" * 32 + "7"
    for signature, expected in ((sign_like_ocean_js8(node, CONSUMER_KEY), "node"),
                                (sign_like_ocean_js(classic, CONSUMER_KEY), "classic"),
                                (sign_like_ocean_js8(node + "x", CONSUMER_KEY), None)):
        for node_first in (False, True):
            assert signed_reading(CONSUMER_ADDRESS, signature, messages=(classic,),
                                  node_messages=(node,), node_first=node_first) == expected
        assert signed_reading(OTHER_ADDRESS, signature, messages=(classic,),
                              node_messages=(node,), node_first=True) is None
