import json

import pytest

from tests.helpers import CONSUMER_ADDRESS, PROVIDER_KEY
from tidegate.errors import ConfigurationError
from tidegate.settings import Settings

BASE = {"PROVIDER_PRIVATE_KEY": PROVIDER_KEY, "NETWORK_URL": "http://127.0.0.1:8545"}


def test_single_values() -> None:
    s = Settings.from_env(BASE)
    assert s.provider_key == PROVIDER_KEY and not s.multichain
    assert s.key_for_chain(12345) == PROVIDER_KEY
    assert s.chain_independent_key == PROVIDER_KEY
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
    assert s.multichain and set(s.network_urls) == {8996, 1}
    assert s.key_for_chain(2) is None
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


def test_gateways_default_to_the_reference_images() -> None:
    s = Settings.from_env(BASE)
    assert (s.ipfs_gateway, s.arweave_gateway) == ("https://ipfs.io", "https://arweave.net/")
    s = Settings.from_env({**BASE, "IPFS_GATEWAY": "http://127.0.0.1:8080",
                           "ARWEAVE_GATEWAY": ""})
    assert (s.ipfs_gateway, s.arweave_gateway) == ("http://127.0.0.1:8080", None)
    with pytest.raises(ConfigurationError, match="IPFS_GATEWAY must be an http"):
        Settings.from_env({**BASE, "IPFS_GATEWAY": "ftp://x"})
