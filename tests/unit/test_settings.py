import json
from pathlib import Path

import pydantic
import pytest

from tests.helpers import CONSUMER_ADDRESS, OTHER_KEY, PROVIDER_KEY
from tidegate.errors import ConfigurationError
from tidegate.settings import Settings

BASE = {"PROVIDER_PRIVATE_KEY": PROVIDER_KEY, "NETWORK_URL": "http://127.0.0.1:8545"}


def test_single_values() -> None:
    s = Settings.from_env(BASE)
    assert s.provider_keys.single is not None and not s.provider_keys.is_map
    assert s.provider_keys.single.get_secret_value() == PROVIDER_KEY
    assert s.network_url == "http://127.0.0.1:8545"
    key = s.provider_keys.get(12345)
    assert key is not None and key.get_secret_value() == PROVIDER_KEY
    assert s.chain_independent_key.get_secret_value() == PROVIDER_KEY
    assert s.read_timeout == 10.0 and s.max_checksum_length == 5 * 1024 * 1024


def test_json_maps_and_reference_names() -> None:
    s = Settings.from_env({
        "PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY, "1": PROVIDER_KEY}),
        "NETWORK_URL": json.dumps({"8996": "http://a:1", "1": "https://b"}),
        "AUTHORIZED_DECRYPTERS": json.dumps([CONSUMER_ADDRESS.lower()]),
        "REQUEST_TIMEOUT": "30",
        "ALLOW_NON_PUBLIC_IP": "True",
        "MAX_CHECKSUM_LENGTH": "0",
    })
    assert s.network_urls.is_map and set(s.network_urls.by_chain) == {8996, 1}
    assert s.network_url is None and s.provider_keys.get(2) is None
    assert s.authorized_decrypters == (CONSUMER_ADDRESS,)
    assert s.read_timeout == 30.0
    assert s.allow_private_urls is True
    assert s.max_checksum_length == 0


@pytest.mark.parametrize(("env", "fragment"), [
    ({}, "PROVIDER_PRIVATE_KEY is required"),
    ({**BASE, "PROVIDER_PRIVATE_KEY": "0x1234"}, "32-byte hex private key"),
    ({**BASE, "NETWORK_URL": json.dumps({"1": "http://a"})}, "both be single or both JSON"),
    ({**BASE, "NETWORK_URL": "{bad"}, "valid JSON"),
    ({**BASE, "AUTHORIZED_DECRYPTERS": "[1]"}, "AUTHORIZED_DECRYPTERS"),
    ({**BASE, "REQUEST_TIMEOUT": "-3"}, "REQUEST_TIMEOUT"),
    ({**BASE, "ALLOW_NON_PUBLIC_IP": "maybe"}, "boolean"),
    ({**BASE, "TIDEGATE_DATABASE_URL": "mysql://x"}, "TIDEGATE_DATABASE_URL"),
    ({**BASE, "TIDEGATE_RELAY_READ_BUDGET": "1000"}, "TIDEGATE_RELAY_READ_BUDGET"),
    ({**BASE, "TIDEGATE_CHAIN_STATE_TTL": "-1"}, "TIDEGATE_CHAIN_STATE_TTL"),
])
def test_bad_configuration_fails_with_clear_message(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert fragment in str(info.value)


def test_secret_is_never_echoed() -> None:
    bad_key = "0x" + "ab" * 31 + "zz"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**BASE, "PROVIDER_PRIVATE_KEY": bad_key})
    assert bad_key not in str(info.value)


def test_performance_knobs() -> None:
    s = Settings.from_env({**BASE, "TIDEGATE_RELAY_READ_BUDGET": "32768",
                           "TIDEGATE_CHAIN_STATE_TTL": "0", "TIDEGATE_FAST_ROUTES": "false"})
    assert (s.relay_read_budget, s.chain_state_ttl, s.fast_routes) == (32768, 0.0, False)
    default = Settings.from_env(BASE)
    assert (default.relay_read_budget, default.chain_state_ttl, default.fast_routes) == (
        4 * 1024 * 1024, 1.0, True)


def test_outbound_budgets_per_purpose() -> None:
    default = Settings.from_env(BASE)
    assert (default.download_connections, default.probe_connections,
            default.compute_fetch_connections, default.probe_timeout,
            default.probes_per_client) == (200, 50, 20, 15.0, 4)
    s = Settings.from_env({**BASE, "TIDEGATE_DOWNLOAD_CONNECTIONS": "10",
                           "TIDEGATE_PROBE_CONNECTIONS": "3",
                           "TIDEGATE_COMPUTE_FETCH_CONNECTIONS": "2",
                           "TIDEGATE_PROBE_TIMEOUT": "2.5", "TIDEGATE_PROBES_PER_CLIENT": "0"})
    assert (s.download_connections, s.probe_connections, s.compute_fetch_connections,
            s.probe_timeout, s.probes_per_client) == (10, 3, 2, 2.5, 0)
    for name, value in (("TIDEGATE_PROBE_CONNECTIONS", "0"), ("TIDEGATE_PROBE_TIMEOUT", "0"),
                        ("TIDEGATE_DOWNLOAD_CONNECTIONS", "-1"),
                        ("TIDEGATE_PROBES_PER_CLIENT", "x")):
        with pytest.raises(ConfigurationError) as info:
            Settings.from_env({**BASE, name: value})
        assert name in str(info.value)


def test_inbound_limits() -> None:
    default = Settings.from_env(BASE)
    assert (default.header_timeout, default.body_timeout, default.slow_request_after,
            default.slow_requests_per_client, default.max_header_bytes,
            default.max_url_bytes, default.max_json_depth) == (
        10.0, 60.0, 2.0, 16, 32768, 16384, 64)
    s = Settings.from_env({**BASE, "TIDEGATE_HEADER_TIMEOUT": "3", "TIDEGATE_BODY_TIMEOUT": "9",
                           "TIDEGATE_SLOW_REQUEST_AFTER": "0.5",
                           "TIDEGATE_SLOW_REQUESTS_PER_CLIENT": "2",
                           "TIDEGATE_MAX_HEADER_BYTES": "2048", "TIDEGATE_MAX_URL_BYTES": "512",
                           "TIDEGATE_MAX_JSON_DEPTH": "5"})
    assert (s.header_timeout, s.body_timeout, s.slow_request_after, s.slow_requests_per_client,
            s.max_header_bytes, s.max_url_bytes, s.max_json_depth) == (3, 9, 0.5, 2, 2048, 512, 5)
    for name, value in (("TIDEGATE_HEADER_TIMEOUT", "0"), ("TIDEGATE_MAX_HEADER_BYTES", "100"),
                        ("TIDEGATE_MAX_URL_BYTES", "10"), ("TIDEGATE_MAX_JSON_DEPTH", "1"),
                        ("TIDEGATE_SLOW_REQUESTS_PER_CLIENT", "0")):
        with pytest.raises(ConfigurationError) as info:
            Settings.from_env({**BASE, name: value})
        assert name in str(info.value)


def test_gateways_default_to_the_reference_images() -> None:
    s = Settings.from_env(BASE)
    assert (s.ipfs_gateway, s.arweave_gateway) == ("https://ipfs.io", "https://arweave.net/")
    s = Settings.from_env({**BASE, "IPFS_GATEWAY": "http://127.0.0.1:8080",
                           "ARWEAVE_GATEWAY": ""})
    assert (s.ipfs_gateway, s.arweave_gateway) == ("http://127.0.0.1:8080", None)
    with pytest.raises(ConfigurationError, match="IPFS_GATEWAY must be an http"):
        Settings.from_env({**BASE, "IPFS_GATEWAY": "ftp://x"})


def test_repr_and_str_hold_no_secret() -> None:
    universal, secret = "0x" + "cd" * 32, "token-secret-value"
    s = Settings.from_env({
        "PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY, "1": OTHER_KEY}),
        "NETWORK_URL": json.dumps({"8996": "http://a:1", "1": "https://rpc/v3/apikey123"}),
        "UNIVERSAL_PRIVATE_KEY": universal, "TIDEGATE_AUTH_TOKEN_SECRET": secret,
        "TIDEGATE_DATABASE_URL": "postgresql://tidegate:hunter2@db:5432/tidegate",
    })
    for text in (repr(s), str(s)):
        for hidden in (PROVIDER_KEY, PROVIDER_KEY[2:], OTHER_KEY[2:], universal[2:], secret,
                       "hunter2", "apikey123"):
            assert hidden not in text
    assert s.universal_key is not None and s.universal_key.get_secret_value() == universal
    assert s.auth_token_secret is not None and s.auth_token_secret.get_secret_value() == secret


def test_settings_are_frozen() -> None:
    s = Settings.from_env(BASE)
    with pytest.raises(pydantic.ValidationError):
        s.rpc_timeout = 1.0  # type: ignore[misc]


def test_a_wrong_value_is_one_problem_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**BASE, "PROVIDER_PRIVATE_KEY": "0x1234"})
    assert str(info.value) == (
        "invalid configuration: PROVIDER_PRIVATE_KEY must be a 32-byte hex private key")
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**BASE, "TIDEGATE_RPC_TIMEOUT": "soon"})
    assert str(info.value) == (
        "invalid configuration: TIDEGATE_RPC_TIMEOUT must be a positive number of seconds")


def test_every_wrong_value_is_listed_at_once() -> None:
    bad_keys = json.dumps({"8996": "0x" + "zz" * 32, "1": "nope", "x": PROVIDER_KEY})
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({
            "PROVIDER_PRIVATE_KEY": bad_keys,
            "UNIVERSAL_PRIVATE_KEY": "0xshort",
            "AUTHORIZED_DECRYPTERS": "not json",
            "ALLOW_NON_PUBLIC_IP": "perhaps",
            "REQUEST_TIMEOUT": "-1",
            "TIDEGATE_INDEXER_START_BLOCK": "first",
            "PROVIDER_FEE_TOKEN": "0x12",
            "TIDEGATE_COMPUTE_RUNTIMES": "{}",
        })
    problems = str(info.value).removeprefix("invalid configuration: ").split("; ")
    named = [p.split(" ")[0] for p in problems]
    assert named == ["PROVIDER_PRIVATE_KEY", "NETWORK_URL",
                     "UNIVERSAL_PRIVATE_KEY", "AUTHORIZED_DECRYPTERS", "PROVIDER_FEE_TOKEN",
                     "ALLOW_NON_PUBLIC_IP", "REQUEST_TIMEOUT", "TIDEGATE_INDEXER_START_BLOCK",
                     "TIDEGATE_COMPUTE_RUNTIMES"]
    assert "NETWORK_URL is required" in problems
    assert problems[0] == ("PROVIDER_PRIVATE_KEY has a chain id that is not an integer and "
                           "entries for chains 8996, 1 must each be a 32-byte hex private key")
    assert PROVIDER_KEY not in str(info.value) and "0xshort" not in str(info.value)


def test_names_and_forms_of_the_reference() -> None:
    fee = "0x" + "ab" * 20
    s = Settings.from_env({**BASE, "PROVIDER_FEE_TOKEN": json.dumps({"8996": fee}),
                           "TIDEGATE_READ_TIMEOUT": "3", "REQUEST_TIMEOUT": "30",
                           "TIDEGATE_ALLOW_PRIVATE_URLS": "false", "ALLOW_NON_PUBLIC_IP": "1",
                           "AQUARIUS_URL": "http://aquarius:5000", "LOG_LEVEL": " debug ",
                           "TIDEGATE_ROOT_PATH": "/provider/"})
    assert s.provider_fee_tokens.get(8996) == fee and s.provider_fee_tokens.get(1) is None
    assert s.read_timeout == 3.0 and s.allow_private_urls is False
    assert s.indexer_enabled is False  # an Aquarius resolves DDOs
    assert (s.log_level, s.root_path) == ("DEBUG", "/provider")
    blank = Settings.from_env({**BASE, "TIDEGATE_DATA_DIR": "  ", "TIDEGATE_INDEXER": ""})
    # Relative paths are made absolute (the sandbox binds them by name).
    assert blank.data_dir == Path("data").absolute() and blank.indexer_enabled is False


@pytest.mark.parametrize(("env", "chosen"), [
    ({}, PROVIDER_KEY),
    ({"UNIVERSAL_PRIVATE_KEY": OTHER_KEY}, OTHER_KEY),
    ({"PROVIDER_PRIVATE_KEY": json.dumps({"8996": PROVIDER_KEY, "137": OTHER_KEY}),
      "NETWORK_URL": json.dumps({"8996": "http://a", "137": "http://b"})}, OTHER_KEY),
    ({"PROVIDER_PRIVATE_KEY": json.dumps({"137": OTHER_KEY, "8996": PROVIDER_KEY}),
      "NETWORK_URL": json.dumps({"8996": "http://a", "137": "http://b"})}, OTHER_KEY),
])
def test_one_chain_independent_key(env: dict[str, str], chosen: str) -> None:
    """UNIVERSAL_PRIVATE_KEY, else the single key, else the lowest chain id's key."""
    assert Settings.from_env({**BASE, **env}).chain_independent_key.get_secret_value() == chosen


def test_paths_are_absolute_and_log_levels_checked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({**BASE, "TIDEGATE_DATA_DIR": "./state", "ADDRESS_FILE": "a.json"})
    assert s.data_dir == tmp_path / "state" and s.address_file == tmp_path / "a.json"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({**BASE, "LOG_LEVEL": "LOUD"})
    assert "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in str(caught.value)
