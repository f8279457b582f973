"""TIDEGATE_RATE_LIMIT*, TIDEGATE_TRUSTED_PROXIES, TIDEGATE_REDIS_URL."""

from __future__ import annotations

import ipaddress

import pytest

from tidegate.settings import (
    DEFAULT_RATE_LIMITS,
    ClassLimit,
    RateLimitSettings,
    rate_limit_from_env,
)


def parse(**env: str) -> tuple[RateLimitSettings, list[str]]:
    problems: list[str] = []
    return rate_limit_from_env(env, problems), problems


def test_defaults_are_on_with_the_documented_limits() -> None:
    settings, problems = parse()
    assert problems == []
    assert settings.enabled and settings.redis_url is None and settings.trusted_proxies == ()
    assert settings.limits == DEFAULT_RATE_LIMITS
    assert settings.limits["probe"] == ClassLimit(5.0, 120)


def test_values_are_read() -> None:
    settings, problems = parse(
        TIDEGATE_RATE_LIMIT="false", TIDEGATE_RATE_LIMIT_READ_RATE="2.5",
        TIDEGATE_RATE_LIMIT_READ_BURST="7", TIDEGATE_RATE_LIMIT_PROBE_RATE="0",
        TIDEGATE_TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1 ::1",
        TIDEGATE_REDIS_URL="redis://:secret@cache:6379/2",
        TIDEGATE_RATE_LIMIT_SYNC_INTERVAL="0.05")
    assert problems == []
    assert not settings.enabled
    assert settings.limits["read"] == ClassLimit(2.5, 7)
    assert settings.limits["probe"].rate == 0
    assert settings.trusted_proxies == tuple(ipaddress.ip_network(n) for n in
                                             ("10.0.0.0/8", "192.0.2.1/32", "::1/128"))
    assert settings.redis_url == "redis://:secret@cache:6379/2"
    assert settings.sync_interval == 0.05


@pytest.mark.parametrize(("name", "value"), [
    ("TIDEGATE_RATE_LIMIT", "maybe"),
    ("TIDEGATE_RATE_LIMIT_STATUS_RATE", "-1"),
    ("TIDEGATE_RATE_LIMIT_STATUS_RATE", "fast"),
    ("TIDEGATE_RATE_LIMIT_SIGNED_RATE", "1e7"),
    ("TIDEGATE_RATE_LIMIT_SIGNED_BURST", "0"),
    ("TIDEGATE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local"),
    ("TIDEGATE_REDIS_URL", "http://:hunter2@cache"),
    ("TIDEGATE_RATE_LIMIT_SYNC_INTERVAL", "60"),
])
def test_bad_values_are_reported_by_name_never_by_value(name: str, value: str) -> None:
    _settings, problems = parse(**{name: value})
    assert len(problems) == 1 and name in problems[0]
    assert "hunter2" not in problems[0]
