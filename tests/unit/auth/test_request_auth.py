"""RequestAuthenticator on both real stores, with real signatures and tokens."""

import time

import pytest

from tests.helpers import (
    CONSUMER_ADDRESS,
    CONSUMER_KEY,
    OTHER_ADDRESS,
    OTHER_KEY,
    sign_like_ocean_js,
    sign_like_ocean_py,
)
from tidegate.auth.nonces import MAX_NONCE, NonceReusedError, check_nonce, parse_nonce
from tidegate.auth.request_auth import RequestAuthenticator, SignedRequest
from tidegate.auth.signatures import InvalidSignatureError
from tidegate.auth.tokens import AuthTokens, InvalidTokenError
from tidegate.errors import BadRequestError, ValidationError
from tidegate.stores.base import Store
from tidegate.types import Nonce

MESSAGE = "did:op:" + "ab" * 32


@pytest.fixture
def auth(store: Store) -> RequestAuthenticator:
    return RequestAuthenticator(store, AuthTokens("request-auth-test-secret-0123456789", store))


def claim(nonce: str | None, *, signer: str = CONSUMER_ADDRESS, signature: str | None = None,
          auth_token: str | None = None, allow_token: bool = True) -> SignedRequest:
    return SignedRequest(signer=signer, message=MESSAGE,
                         nonce=None if nonce is None else Nonce.parse(nonce),
                         signature=signature, auth_token=auth_token, allow_token=allow_token)


async def signed(auth: RequestAuthenticator, nonce: str, key: str = CONSUMER_KEY,
                 signer: str = CONSUMER_ADDRESS) -> str:
    return await auth.authenticate(claim(nonce, signer=signer,
                                         signature=sign_like_ocean_js(MESSAGE + nonce, key)))


async def test_a_signed_request_consumes_its_nonce(auth: RequestAuthenticator,
                                                   store: Store) -> None:
    assert await signed(auth, "5", signer=CONSUMER_ADDRESS.lower()) == CONSUMER_ADDRESS
    assert await store.get_nonce(CONSUMER_ADDRESS) == "5"
    for replay in ("5", "4", "5.0"):
        with pytest.raises(NonceReusedError):
            await signed(auth, replay)
    assert await signed(auth, "5.5") == CONSUMER_ADDRESS


async def test_both_signature_styles_are_accepted(auth: RequestAuthenticator) -> None:
    await auth.authenticate(claim("1",
                                  signature=sign_like_ocean_py(MESSAGE + "1", CONSUMER_KEY)))
    await signed(auth, "2")


async def test_a_wrong_signature_burns_no_nonce(auth: RequestAuthenticator,
                                                store: Store) -> None:
    with pytest.raises(InvalidSignatureError):
        await signed(auth, "7", key=OTHER_KEY)  # signed by another key
    assert await store.get_nonce(CONSUMER_ADDRESS) is None
    with pytest.raises(InvalidSignatureError):
        await auth.authenticate(claim("7"))
    assert await store.get_nonce(CONSUMER_ADDRESS) is None


async def test_malformed_fields_are_400(auth: RequestAuthenticator) -> None:
    with pytest.raises(ValidationError):  # no nonce given
        await auth.authenticate(claim(None, signature="0x" + "11" * 65))
    with pytest.raises(BadRequestError) as address:
        await signed(auth, "1", signer="0x1234")
    assert address.value.code == "invalid_address"
    # Unicode digits ("²", "١") pass str.isdigit(); a nonce is ASCII decimal only.
    for nonce in ("abc", "-1", "nan", str(MAX_NONCE + 1), "1" * 30, "²", "١", " 1", "1e3",
                  "0x10", "1_000", "", " "):
        with pytest.raises(BadRequestError) as caught:
            await signed(auth, nonce)
        assert caught.value.code == "invalid_nonce", nonce


async def test_the_largest_nonce_is_int64(auth: RequestAuthenticator, store: Store) -> None:
    assert parse_nonce(str(MAX_NONCE)) == MAX_NONCE
    assert await signed(auth, str(MAX_NONCE)) == CONSUMER_ADDRESS
    assert await store.get_nonce(CONSUMER_ADDRESS) == str(MAX_NONCE)


async def test_a_token_checks_the_nonce_but_never_moves_it(auth: RequestAuthenticator,
                                                           store: Store) -> None:
    token = await auth.tokens.create(CONSUMER_ADDRESS, int(time.time()) + 600)
    await signed(auth, "10")
    for nonce in ("11", "11", str(MAX_NONCE)):
        assert await auth.authenticate(claim(nonce, auth_token=token)) == CONSUMER_ADDRESS
    assert await store.get_nonce(CONSUMER_ADDRESS) == "10"
    with pytest.raises(NonceReusedError):
        await auth.authenticate(claim("10", auth_token=token))
    # The owner's signed requests still work after a token holder's huge nonce.
    assert await signed(auth, "12") == CONSUMER_ADDRESS


async def test_a_token_of_another_address_or_where_not_allowed(
        auth: RequestAuthenticator) -> None:
    token = await auth.tokens.create(OTHER_ADDRESS, int(time.time()) + 600)
    with pytest.raises(InvalidTokenError):
        await auth.authenticate(claim("1", auth_token=token))
    with pytest.raises(InvalidSignatureError):
        await auth.authenticate(claim("1", signer=OTHER_ADDRESS, auth_token=token,
                                      allow_token=False))


async def test_a_signature_wins_over_a_token(auth: RequestAuthenticator,
                                             store: Store) -> None:
    token = await auth.tokens.create(CONSUMER_ADDRESS, int(time.time()) + 600)
    with pytest.raises(InvalidSignatureError):
        await auth.authenticate(claim("3", signature=sign_like_ocean_js(MESSAGE + "3", OTHER_KEY),
                                      auth_token=token))
    await auth.authenticate(claim("3", signature=sign_like_ocean_js(MESSAGE + "3", CONSUMER_KEY),
                                  auth_token=token))
    assert await store.get_nonce(CONSUMER_ADDRESS) == "3"


async def test_check_nonce_alone(store: Store) -> None:
    await check_nonce(store, CONSUMER_ADDRESS, Nonce.parse("1"))
    assert await store.get_nonce(CONSUMER_ADDRESS) is None
