"""Auth tokens against both real stores: issue, verify, revoke, and revoked stays revoked."""

import time

import pytest
from eth_utils import to_checksum_address

from tidegate.auth.tokens import AuthTokens, InvalidTokenError
from tidegate.stores.base import Store

ALICE = to_checksum_address("0x8a5fa8d8aa6b2b7e5b0f4f0f4f3e8c1a5e4d0a11")
BOB = "0x1111111111111111111111111111111111111111"
SECRET = "unit-test-token-secret-0123456789abcdef"


def later(seconds: int = 3600) -> int:
    return int(time.time()) + seconds


def variants(token: str) -> list[str]:
    """Texts a JWT library may accept for the same token (padding, whitespace)."""
    return [token + "=", token + "==", token + " ", " " + token]


async def test_a_token_names_its_address(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    token = await tokens.create(ALICE.lower(), later())
    assert await tokens.verify(token) == ALICE


async def test_same_address_and_expiration_give_the_same_token(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    expiration = later()
    assert await tokens.create(ALICE, expiration) == await tokens.create(ALICE, expiration)


async def test_an_expired_token_cannot_be_created_or_used(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    with pytest.raises(InvalidTokenError) as created:
        await tokens.create(ALICE, int(time.time()) - 1)
    assert created.value.code == "token_expired"
    old = AuthTokens(SECRET, store)._encode(ALICE, int(time.time()) - 10)
    with pytest.raises(InvalidTokenError) as used:
        await tokens.verify(old)
    assert used.value.code == "token_expired"


async def test_another_secret_or_garbage_is_invalid(store: Store) -> None:
    token = await AuthTokens("another-secret-entirely-0123456789", store).create(ALICE, later())
    tokens = AuthTokens(SECRET, store)
    for bad in (token, "not.a.token", "", token[:-2]):
        with pytest.raises(InvalidTokenError) as caught:
            await tokens.verify(bad)
        assert caught.value.code == "invalid_token"


async def test_revoked_token_is_deleted(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    token = await tokens.create(ALICE, later())
    await tokens.revoke(token, ALICE)
    with pytest.raises(InvalidTokenError) as caught:
        await tokens.verify(token)
    assert caught.value.code == "token_deleted"


async def test_a_revoked_token_stays_revoked_in_any_spelling(store: Store) -> None:
    # Revocation is by the token's identity, not its text: a JWT library that accepts
    # a padded signature must not bring a revoked token back.
    tokens = AuthTokens(SECRET, store)
    token = await tokens.create(ALICE, later())
    await tokens.revoke(token, ALICE)
    for spelling in variants(token):
        with pytest.raises(InvalidTokenError):
            await tokens.verify(spelling)


async def test_revoking_a_spelling_revokes_the_token(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    token = await tokens.create(ALICE, later())
    accepted = [s for s in variants(token) if await _accepted(tokens, s)]
    for spelling in accepted[:1]:
        await tokens.revoke(spelling, ALICE)
        with pytest.raises(InvalidTokenError) as caught:
            await tokens.verify(token)
        assert caught.value.code == "token_deleted"


async def _accepted(tokens: AuthTokens, text: str) -> bool:
    try:
        await tokens.verify(text)
    except InvalidTokenError:
        return False
    return True


async def test_only_the_holder_revokes(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    token = await tokens.create(ALICE, later())
    with pytest.raises(InvalidTokenError):
        await tokens.revoke(token, BOB)
    assert await tokens.verify(token) == ALICE


async def test_creating_a_revoked_token_again_restores_it(store: Store) -> None:
    tokens = AuthTokens(SECRET, store)
    expiration = later()
    token = await tokens.create(ALICE, expiration)
    await tokens.revoke(token, ALICE)
    assert await tokens.create(ALICE, expiration) == token
    assert await tokens.verify(token) == ALICE
