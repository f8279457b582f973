"""Typed, frozen settings: the only module that reads the environment.

The reference Provider's variable names and forms are accepted unchanged
(``PROVIDER_PRIVATE_KEY`` and ``NETWORK_URL`` as a single value or a JSON map
chainId -> value, ``UNIVERSAL_PRIVATE_KEY``, ``AUTHORIZED_DECRYPTERS`` ...) so an
operator can switch with the same environment; settings the reference lacks use
``TIDEGATE_*`` names. Every value is validated once, at start-up: a bad value raises
:class:`~tidegate.errors.ConfigurationError` listing every problem found.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address

from tidegate.errors import ConfigurationError

_Check = Callable[[str, str], bool]
_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}

DEFAULT_MAX_CHECKSUM_LENGTH = 5 * 1024 * 1024
# The reference Provider's Docker image sets these (unset there means no gateway).
DEFAULT_IPFS_GATEWAY = "https://ipfs.io"
DEFAULT_ARWEAVE_GATEWAY = "https://arweave.net/"
DEFAULT_MAX_ENCRYPT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one Tidegate process.

    ``provider_keys`` / ``network_urls`` hold the per-chain (JSON map) form;
    ``provider_key`` / ``network_url`` the single-value form. Exactly one form of
    each is set, and both use the same form (as the reference requires).
    """

    provider_key: str | None = None
    provider_keys: Mapping[int, str] = field(default_factory=dict)
    network_url: str | None = None
    network_urls: Mapping[int, str] = field(default_factory=dict)
    universal_key: str | None = None
    auth_token_secret: str | None = None
    authorized_decrypters: tuple[str, ...] = ()
    address_file: Path | None = None
    aquarius_url: str | None = None
    operator_service_url: str | None = None
    provider_fee_token: str | None = None
    provider_fee_tokens: Mapping[int, str] = field(default_factory=dict)
    allow_private_urls: bool = False
    max_checksum_length: int = DEFAULT_MAX_CHECKSUM_LENGTH
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    relay_read_budget: int = 4 * 1024 * 1024
    rpc_timeout: float = 10.0
    chain_state_ttl: float = 1.0
    pending_tx_wait: float = 5.0
    ipfs_gateway: str | None = None
    arweave_gateway: str | None = None
    database_url: str | None = None
    data_dir: Path = Path("data")
    max_encrypt_bytes: int = DEFAULT_MAX_ENCRYPT_BYTES
    root_path: str = ""
    log_level: str = "INFO"
    access_log: bool = True
    fast_routes: bool = True
    access_fee_amount: int = 0
    compute_status_signed: bool = False
    indexer_enabled: bool = True
    indexer_start_block: int = 0
    indexer_confirmations: int = 0
    indexer_poll_interval: float = 1.0
    # --- compute (local engine) --------------------------------------------------
    compute_environments: tuple[Mapping[str, Any], ...] | None = None
    """``TIDEGATE_COMPUTE_ENVIRONMENTS`` (JSON list of objects); None: the default."""
    compute_runtimes: tuple[Mapping[str, Any], ...] | None = None
    """``TIDEGATE_COMPUTE_RUNTIMES`` (JSON list of objects); None: the default table."""
    compute_unsafe_no_sandbox: bool = False
    compute_dir: Path | None = None
    compute_sandbox_uid: int = 61000
    compute_max_processes: int = 64
    compute_tmp_mb: int = 64
    rate_limit: RateLimitSettings = field(default_factory=lambda: RateLimitSettings())
    """``TIDEGATE_RATE_LIMIT*``, ``TIDEGATE_TRUSTED_PROXIES``, ``TIDEGATE_REDIS_URL``."""

    @property
    def multichain(self) -> bool:
        """True when keys and RPCs are given as JSON maps per chain."""
        return bool(self.network_urls)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "tidegate.db"

    def key_for_chain(self, chain_id: int) -> str | None:
        """The provider's private key for ``chain_id`` (None if not configured)."""
        if self.provider_keys:
            return self.provider_keys.get(chain_id)
        return self.provider_key

    @property
    def chain_independent_key(self) -> str | None:
        """``UNIVERSAL_PRIVATE_KEY``, else the single provider key."""
        return self.universal_key or self.provider_key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (``os.environ`` by default)."""
        return _Parser(os.environ if environ is None else environ).build()


class _Parser:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, *names: str) -> str | None:
        for name in names:
            value = self.env.get(name)
            if value is not None and value.strip() != "":
                return value.strip()
        return None

    def build(self) -> Settings:
        key, keys = self._per_chain("PROVIDER_PRIVATE_KEY", self._check_key)
        url, urls = self._per_chain("NETWORK_URL", self._check_url)
        if key is None and not keys:
            self.problems.append("PROVIDER_PRIVATE_KEY is required")
        if url is None and not urls:
            self.problems.append("NETWORK_URL is required")
        if (key is not None and urls) or (keys and url is not None):
            self.problems.append(
                "NETWORK_URL and PROVIDER_PRIVATE_KEY must both be single or both JSON encoded"
            )
        if keys and urls and set(keys) != set(urls):
            self.problems.append("NETWORK_URL and PROVIDER_PRIVATE_KEY list different chain ids")
        fee_token, fee_tokens = self._per_chain("PROVIDER_FEE_TOKEN", self._check_address)
        settings = Settings(
            provider_key=key,
            provider_keys=keys,
            network_url=url,
            network_urls=urls,
            universal_key=self._optional("UNIVERSAL_PRIVATE_KEY", self._check_key),
            auth_token_secret=self.get("TIDEGATE_AUTH_TOKEN_SECRET"),
            authorized_decrypters=self._decrypters(),
            address_file=self._path("ADDRESS_FILE"),
            aquarius_url=self._optional("AQUARIUS_URL", self._check_url),
            operator_service_url=self._optional("OPERATOR_SERVICE_URL", self._check_url),
            provider_fee_token=fee_token,
            provider_fee_tokens=fee_tokens,
            allow_private_urls=self._bool("TIDEGATE_ALLOW_PRIVATE_URLS", "ALLOW_NON_PUBLIC_IP"),
            max_checksum_length=self._int("MAX_CHECKSUM_LENGTH", DEFAULT_MAX_CHECKSUM_LENGTH),
            connect_timeout=self._float("TIDEGATE_CONNECT_TIMEOUT", 5.0),
            read_timeout=self._float("TIDEGATE_READ_TIMEOUT", self._float("REQUEST_TIMEOUT", 10.0)),
            relay_read_budget=self._relay_read_budget(),
            rpc_timeout=self._float("TIDEGATE_RPC_TIMEOUT", 10.0),
            chain_state_ttl=self._float("TIDEGATE_CHAIN_STATE_TTL", 1.0, zero_allowed=True),
            pending_tx_wait=self._float("TIDEGATE_PENDING_TX_WAIT", 5.0),
            ipfs_gateway=self._gateway("IPFS_GATEWAY", DEFAULT_IPFS_GATEWAY),
            arweave_gateway=self._gateway("ARWEAVE_GATEWAY", DEFAULT_ARWEAVE_GATEWAY),
            database_url=self._database_url(),
            data_dir=self._path("TIDEGATE_DATA_DIR") or Path("data"),
            max_encrypt_bytes=self._int("TIDEGATE_MAX_ENCRYPT_BYTES", DEFAULT_MAX_ENCRYPT_BYTES),
            root_path=self._root_path(),
            log_level=(self.get("LOG_LEVEL") or "INFO").upper(),
            access_log=self._bool("TIDEGATE_ACCESS_LOG", default=True),
            fast_routes=self._bool("TIDEGATE_FAST_ROUTES", default=True),
            access_fee_amount=self._int("TIDEGATE_ACCESS_FEE_AMOUNT", 0),
            compute_status_signed=self._bool("TIDEGATE_COMPUTE_STATUS_SIGNED"),
            indexer_enabled=self._bool(
                "TIDEGATE_INDEXER", default=self.get("AQUARIUS_URL") is None
            ),
            indexer_start_block=self._int("TIDEGATE_INDEXER_START_BLOCK", 0),
            indexer_confirmations=self._int("TIDEGATE_INDEXER_CONFIRMATIONS", 0),
            indexer_poll_interval=self._float("TIDEGATE_INDEXER_POLL_INTERVAL", 1.0),
            compute_environments=self._json_objects("TIDEGATE_COMPUTE_ENVIRONMENTS"),
            compute_runtimes=self._json_objects("TIDEGATE_COMPUTE_RUNTIMES"),
            compute_unsafe_no_sandbox=self._bool("TIDEGATE_COMPUTE_UNSAFE_NO_SANDBOX"),
            compute_dir=self._path("TIDEGATE_COMPUTE_DIR"),
            compute_sandbox_uid=self._int("TIDEGATE_COMPUTE_SANDBOX_UID", 61000),
            compute_max_processes=self._int("TIDEGATE_COMPUTE_MAX_PROCESSES", 64),
            compute_tmp_mb=self._int("TIDEGATE_COMPUTE_TMP_MB", 64),
            rate_limit=rate_limit_from_env(self.env, self.problems),
        )
        if self.problems:
            raise ConfigurationError("invalid configuration: " + "; ".join(self.problems))
        return settings

    # --- per-field helpers -------------------------------------------------------
    def _per_chain(
        self, name: str, check: _Check
    ) -> tuple[str | None, dict[int, str]]:
        raw = self.get(name)
        if raw is None:
            return None, {}
        if not raw.startswith("{"):
            return (raw if check(name, raw) else None), {}
        try:
            decoded = json.loads(raw)
        except ValueError:
            self.problems.append(f"{name} is neither a single value nor valid JSON")
            return None, {}
        if not isinstance(decoded, dict) or not decoded:
            self.problems.append(f"{name} must be a non-empty JSON object chainId -> value")
            return None, {}
        result: dict[int, str] = {}
        for chain, value in decoded.items():
            if not str(chain).isdigit() or not isinstance(value, str):
                self.problems.append(f"{name} has an invalid entry for chain {chain!r}")
                continue
            if check(f"{name}[{chain}]", value):
                result[int(chain)] = value
        return None, result

    def _gateway(self, name: str, default: str) -> str | None:
        """A gateway URL: the reference image's default when unset, none when set empty."""
        raw = self.env.get(name)
        if raw is None:
            return default
        if raw.strip() == "":
            return None  # explicitly disabled: such files answer 503 gateway_not_configured
        return raw.strip() if self._check_url(name, raw.strip()) else None

    def _optional(self, name: str, check: _Check) -> str | None:
        raw = self.get(name)
        if raw is None:
            return None
        return raw if check(name, raw) else None

    def _check_key(self, name: str, value: str) -> bool:
        if not _KEY_RE.match(value):
            # Never echo the value: it is a secret.
            self.problems.append(f"{name} must be a 32-byte hex private key")
            return False
        return True

    def _check_url(self, name: str, value: str) -> bool:
        if not re.match(r"^(https?|wss?)://[^\s]+$", value):
            self.problems.append(f"{name} must be an http(s) or ws(s) URL")
            return False
        return True

    def _check_address(self, name: str, value: str) -> bool:
        if not is_address(value):
            self.problems.append(f"{name} must be an Ethereum address")
            return False
        return True

    def _decrypters(self) -> tuple[str, ...]:
        raw = self.get("AUTHORIZED_DECRYPTERS")
        if raw is None:
            return ()
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if not isinstance(decoded, list) or not all(
            isinstance(a, str) and is_address(a) for a in decoded
        ):
            self.problems.append("AUTHORIZED_DECRYPTERS must be a JSON list of addresses")
            return ()
        return tuple(to_checksum_address(a) for a in decoded)

    def _bool(self, *names: str, default: bool = False) -> bool:
        for name in names:
            raw = self.env.get(name)
            if raw is None:
                continue
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            self.problems.append(f"{name} must be a boolean (true/false)")
        return default

    def _relay_read_budget(self) -> int:
        value = self._int("TIDEGATE_RELAY_READ_BUDGET", 4 * 1024 * 1024)
        if not 16 * 1024 <= value <= 1024**3:
            self.problems.append("TIDEGATE_RELAY_READ_BUDGET must be between 16384 and 1073741824")
            return 4 * 1024 * 1024
        return value

    def _int(self, name: str, default: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        if not raw.isdigit():
            self.problems.append(f"{name} must be a non-negative integer")
            return default
        return int(raw)

    def _float(self, name: str, default: float, *, zero_allowed: bool = False) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not (value > 0 or (zero_allowed and value == 0)) or value == float("inf"):
            kind = "a non-negative" if zero_allowed else "a positive"
            self.problems.append(f"{name} must be {kind} number of seconds")
            return default
        return value

    def _json_objects(self, name: str) -> tuple[Mapping[str, Any], ...] | None:
        """A JSON list of objects (their keys are checked by the module that uses them)."""
        raw = self.get(name)
        if raw is None:
            return None
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if not isinstance(decoded, list) or not all(isinstance(e, dict) for e in decoded):
            self.problems.append(f"{name} must be a JSON list of objects")
            return None
        return tuple(decoded)

    def _path(self, name: str) -> Path | None:
        raw = self.get(name)
        return Path(raw).expanduser() if raw is not None else None

    def _database_url(self) -> str | None:
        raw = self.get("TIDEGATE_DATABASE_URL")
        if raw is None:
            return None
        if not re.match(r"^(postgres(ql)?|sqlite)://", raw):
            self.problems.append("TIDEGATE_DATABASE_URL must be postgresql://... or sqlite:///...")
            return None
        return raw

    def _root_path(self) -> str:
        raw = self.get("TIDEGATE_ROOT_PATH") or ""
        raw = raw.rstrip("/")
        if raw and not re.match(r"^(/[A-Za-z0-9._~-]+)+$", raw):
            self.problems.append("TIDEGATE_ROOT_PATH must look like /prefix")
            return ""
        return raw


# --- rate limiting ---------------------------------------------------------------------
# One self-contained block: RateLimitSettings and rate_limit_from_env (it reads only the
# variables below and reports problems the way the parser above does).

RATE_LIMIT_CLASSES = ("status", "read", "signed", "probe")
"""Route classes, each with its own token bucket per client address and per signer."""


@dataclass(frozen=True)
class ClassLimit:
    """A GCRA / token bucket: ``rate`` requests per second on average, ``burst`` at once.

    ``rate`` 0 means the class is not limited.
    """

    rate: float
    burst: int


DEFAULT_RATE_LIMITS: Mapping[str, ClassLimit] = {
    "status": ClassLimit(20.0, 120),
    "read": ClassLimit(20.0, 120),
    "signed": ClassLimit(10.0, 120),
    "probe": ClassLimit(5.0, 120),
}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RateLimitSettings:
    """Rate limiting per client address and per signer (docs/configuration.md)."""

    enabled: bool = True
    limits: Mapping[str, ClassLimit] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    trusted_proxies: tuple[IpNetwork, ...] = ()
    """Peers whose ``X-Forwarded-For`` is believed (empty: the socket peer is the client)."""
    redis_url: str | None = None
    """Share the buckets through this Redis; else through the database (SQLite or PostgreSQL)."""
    sync_interval: float = 0.1
    """Seconds between two exchanges of a worker's counts with the shared state."""


def rate_limit_from_env(env: Mapping[str, str], problems: list[str]) -> RateLimitSettings:
    """``RateLimitSettings`` from ``env``; each invalid variable appends to ``problems``."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() else None

    enabled = True
    raw = get("TIDEGATE_RATE_LIMIT")
    if raw is not None:
        if raw.lower() in _TRUE | _FALSE:
            enabled = raw.lower() in _TRUE
        else:
            problems.append("TIDEGATE_RATE_LIMIT must be a boolean (true/false)")
    limits = dict(DEFAULT_RATE_LIMITS)
    for name, default in DEFAULT_RATE_LIMITS.items():
        prefix = f"TIDEGATE_RATE_LIMIT_{name.upper()}"
        rate, burst = default.rate, default.burst
        raw = get(prefix + "_RATE")
        if raw is not None:
            try:
                rate = float(raw)
            except ValueError:
                rate = -1.0
            if not 0 <= rate <= 100_000:  # beyond, 1/rate vanishes in a timestamp's precision
                problems.append(f"{prefix}_RATE must be a number of requests/s from 0 to "
                                "100000")
                rate = default.rate
        raw = get(prefix + "_BURST")
        if raw is not None:
            if raw.isdigit() and int(raw) >= 1:
                burst = int(raw)
            else:
                problems.append(f"{prefix}_BURST must be a positive integer")
        limits[name] = ClassLimit(rate, burst)
    proxies: list[IpNetwork] = []
    raw = get("TIDEGATE_TRUSTED_PROXIES")
    for item in (raw or "").replace(",", " ").split():
        try:
            proxies.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            problems.append("TIDEGATE_TRUSTED_PROXIES must list IP addresses or CIDR ranges")
            break
    redis_url = get("TIDEGATE_REDIS_URL")
    if redis_url is not None and not re.match(r"^(rediss?|unix)://\S+$", redis_url):
        # Never echo the value: it can carry a password.
        problems.append("TIDEGATE_REDIS_URL must be redis://, rediss:// or unix://")
        redis_url = None
    interval = 0.1
    raw = get("TIDEGATE_RATE_LIMIT_SYNC_INTERVAL")
    if raw is not None:
        try:
            interval = float(raw)
        except ValueError:
            interval = -1.0
        if not 0.01 <= interval <= 10:
            problems.append("TIDEGATE_RATE_LIMIT_SYNC_INTERVAL must be between 0.01 and 10 "
                            "seconds")
            interval = 0.1
    return RateLimitSettings(enabled=enabled, limits=limits, trusted_proxies=tuple(proxies),
                             redis_url=redis_url, sync_interval=interval)
