"""The description file of `tidegate publish`: strict parsing, exact amounts, readable errors."""

from dataclasses import fields
from typing import Any

import pytest

from tidegate.dev.ocean_txs import ONE_TOKEN
from tidegate.dev.publisher import origin, readable, tokens
from tidegate.dev.publishing import (
    DESCRIPTION_KEYS,
    AssetDescription,
    DescriptionError,
    token_amount,
)

FILES = [{"type": "url", "url": "https://data.example/x.csv"}]


def test_the_key_table_is_the_dataclass_and_states_its_defaults() -> None:
    assert list(DESCRIPTION_KEYS) == [f.name for f in fields(AssetDescription)][:2] + [
        key for key in DESCRIPTION_KEYS if key not in ("name", "files")]
    assert set(DESCRIPTION_KEYS) == {f.name for f in fields(AssetDescription)}
    for f in fields(AssetDescription):
        if isinstance(f.default, str):  # the text defaults are stated as they are
            assert DESCRIPTION_KEYS[f.name][0] == f'"{f.default}"'
    parsed = AssetDescription.from_json({"name": "x", "files": FILES})
    assert (parsed.pricing, parsed.services, parsed.timeout, parsed.type) == (
        "plain", ("access",), 86400, "dataset")
    assert DESCRIPTION_KEYS["timeout"][0] == "86400"


def test_a_full_description_parses_exactly() -> None:
    parsed = AssetDescription.from_json({
        "name": "Weather", "files": FILES, "pricing": "fixed_rate", "rate": "2.5",
        "services": ["access", "compute"], "timeout": 0, "tags": ["a"],
        "compute": {"allowRawAlgorithm": True}, "credentials": {"allow": [], "deny": []}})
    assert parsed.rate == 25 * ONE_TOKEN // 10
    assert parsed.services == ("access", "compute") and parsed.timeout == 0
    assert parsed.compute == {"allowRawAlgorithm": True}


def test_every_problem_is_listed_at_once() -> None:
    raw: dict[str, Any] = {"files": FILES, "pricing": "fixed_rate", "colour": "red"}
    with pytest.raises(DescriptionError) as caught:
        AssetDescription.from_json(raw)
    assert caught.value.problems == [
        f"unknown key 'colour' (allowed: {', '.join(DESCRIPTION_KEYS)})",
        "name is required",
        "rate is required with pricing fixed_rate (OCEAN per datatoken)",
    ]
    with pytest.raises(DescriptionError, match="must be a JSON object"):
        AssetDescription.from_json(["not", "an", "object"])


@pytest.mark.parametrize(("value", "units"), [
    ("2.5", 25 * ONE_TOKEN // 10), (3, 3 * ONE_TOKEN), (0.1, ONE_TOKEN // 10),
    ("0.000000000000000001", 1), (" 7 ", 7 * ONE_TOKEN)])
def test_token_amounts_are_exact(value: object, units: int) -> None:
    assert token_amount(value, "rate") == units
    assert token_amount(tokens(units), "rate") == units


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e-19", "two", True, None, [1]])
def test_bad_token_amounts_name_the_key(value: object) -> None:
    with pytest.raises(ValueError, match=r"^--mint "):
        token_amount(value, "--mint")


def test_error_texts_show_bytes_as_hex_on_one_line() -> None:
    text = "revert: owner b'\\x12\\xab' and\n b\"4V\" " + "x" * 300
    shown = readable(text)
    assert shown.startswith("revert: owner 0x12ab and 0x3456 ")
    assert len(shown) == 200 and shown.endswith("…") and "\n" not in shown


def test_origin_drops_path_query_and_credentials() -> None:
    assert origin("https://user:pw@rpc.example:8545/v3/KEY?x=1") == "https://rpc.example:8545"
    assert origin("http://[::1]:8030/") == "http://[::1]:8030"
