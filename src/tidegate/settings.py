"""Typed, frozen settings on pydantic-settings: the only module that reads the environment.

The reference Provider's variable names and forms are accepted unchanged
(``PROVIDER_PRIVATE_KEY`` and ``NETWORK_URL`` as a single value or a JSON map
chainId -> value, ``UNIVERSAL_PRIVATE_KEY``, ``AUTHORIZED_DECRYPTERS`` ...) so an
operator can switch with the same environment; settings the reference lacks use
``TIDEGATE_*`` names (docs/configuration.md is the contract). Every value is validated
once, at start-up: a bad configuration raises :class:`~tidegate.errors.ConfigurationError`
listing every problem at once, one per variable, naming the variable and never its
value. Secrets are :class:`~pydantic.SecretStr` from the moment they are read, so no
``repr``, log line or error shows them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

from eth_utils import is_address, to_checksum_address
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    SkipValidation,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tidegate.chain.setup import PerChain, chain_independent_key
from tidegate.errors import ConfigurationError

DEFAULT_MAX_CHECKSUM_LENGTH: Final = 5 * 1024 * 1024
# The reference Provider's Docker image sets these (unset there means no gateway).
DEFAULT_IPFS_GATEWAY: Final = "https://ipfs.io"
DEFAULT_ARWEAVE_GATEWAY: Final = "https://arweave.net/"
DEFAULT_MAX_ENCRYPT_BYTES: Final = 16 * 1024 * 1024
DEFAULT_RELAY_READ_BUDGET: Final = 4 * 1024 * 1024
DEFAULT_MAX_JSON_DEPTH: Final = 64

_KEY_RE: Final = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_URL_RE: Final = re.compile(r"^(https?|wss?)://[^\s]+$")
_TRUE: Final = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE: Final = frozenset({"0", "false", "no", "off", "n", "f", ""})
_PROBLEM: Final = "tidegate_setting"

# Read as SecretStr straight from the environment (see _Environment).
_SECRET_VARIABLES: Final = frozenset({
    "PROVIDER_PRIVATE_KEY", "UNIVERSAL_PRIVATE_KEY", "TIDEGATE_AUTH_TOKEN_SECRET",
    "TIDEGATE_DATABASE_URL", "TIDEGATE_DOCKER_REGISTRY_AUTH"})
# Set empty, these mean "off" (flags) or "none" (gateways); any other empty variable is unset.
_EMPTY_IS_A_VALUE: Final = frozenset({
    "IPFS_GATEWAY", "ARWEAVE_GATEWAY", "TIDEGATE_ALLOW_PRIVATE_URLS", "ALLOW_NON_PUBLIC_IP",
    "TIDEGATE_ACCESS_LOG", "TIDEGATE_FAST_ROUTES", "TIDEGATE_COMPUTE_STATUS_SIGNED",
    "TIDEGATE_INDEXER", "TIDEGATE_COMPUTE_UNSAFE_NO_SANDBOX", "TIDEGATE_COMPUTE_CGROUPS",
    "TIDEGATE_COMPUTE_SECCOMP", "DOCKER_TLS_VERIFY"})


# --- value parsers (each raises one problem that never quotes the value) ---------------
def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError(_PROBLEM, "{problem}", {"problem": text})


def _text(value: Any) -> str:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(raw, str):
        raise _problem("must be text")
    return raw


def _is_key(text: str) -> bool:
    return bool(_KEY_RE.match(text))


def _is_url(text: str) -> bool:
    return bool(_URL_RE.match(text))


def _per_chain(check: Callable[[str], bool], what: str, *, secret: bool = False
               ) -> Callable[[Any], Any]:
    """A single value, or a JSON map chainId -> value (told apart by a leading ``{``)."""

    def parse(value: Any) -> Any:
        if isinstance(value, PerChain):
            return value
        text = _text(value)
        wrap: Callable[[str], Any] = SecretStr if secret else str
        if not text.startswith("{"):
            if not check(text):
                raise _problem(f"must be {what}")
            return PerChain(single=wrap(text))
        try:
            decoded = json.loads(text)
        except ValueError:
            raise _problem("is neither a single value nor valid JSON") from None
        if not isinstance(decoded, dict) or not decoded:
            raise _problem("must be a non-empty JSON object chainId -> value")
        faults: list[str] = []
        # Never echo a map key either: a swapped map would hold the secret there.
        if not all(str(chain).isascii() and str(chain).isdigit() for chain in decoded):
            faults.append("has a chain id that is not an integer")
        bad = [str(chain) for chain, entry in decoded.items()
               if str(chain).isdigit() and not (isinstance(entry, str) and check(entry))]
        if bad:
            faults.append(f"entry for chain {bad[0]} must be {what}" if len(bad) == 1 else
                          f"entries for chains {', '.join(bad)} must each be {what}")
        if faults:
            raise _problem(" and ".join(faults))  # one problem per variable
        return PerChain(by_chain={int(chain): wrap(entry) for chain, entry in decoded.items()})

    return parse


def _private_key(value: Any) -> SecretStr:
    if not _is_key(_text(value)):
        raise _problem("must be a 32-byte hex private key")
    return value if isinstance(value, SecretStr) else SecretStr(value)


def _url(value: Any) -> str:
    if not _is_url(_text(value)):
        raise _problem("must be an http(s) or ws(s) URL")
    return str(value)


def _gateway(value: Any) -> str | None:
    """Empty: no gateway (such files answer 503 gateway_not_configured)."""
    return None if _text(value) == "" else _url(value)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise _problem("must be a boolean (true/false)")


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise _problem("must be a non-negative integer")


def _positive(value: Any) -> int:
    number = _count(value)
    if number < 1:
        raise _problem("must be a positive integer")
    return number


def _at_least(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = _count(value)
        if number < minimum:
            raise _problem(f"must be an integer of at least {minimum}")
        return number

    return parse


def _relay_read_budget(value: Any) -> int:
    budget = _count(value)
    if not 16 * 1024 <= budget <= 1024**3:
        raise _problem("must be between 16384 and 1073741824")
    return budget


def _seconds(*, zero_allowed: bool = False) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1.0
        if not (number > 0 or (zero_allowed and number == 0)) or number == float("inf"):
            kind = "a non-negative" if zero_allowed else "a positive"
            raise _problem(f"must be {kind} number of seconds")
        return number

    return parse


_DOCKER_HOST_RE: Final = re.compile(r"^(unix://)?/[^\s]+$|^(tcp|http|https)://[^\s/]+/?$")
_DOCKER_USER_RE: Final = re.compile(r"^[0-9]{1,10}(:[0-9]{1,10})?$")


def _docker_host(value: Any) -> str:
    """``unix:///path`` (or a bare ``/path``), ``tcp://host:port``, ``http(s)://host:port``."""
    text = _text(value)
    if not _DOCKER_HOST_RE.match(text):
        raise _problem("must be unix:///path/to/docker.sock or tcp://host:port")
    return f"unix://{text}" if text.startswith("/") else text


@dataclass(frozen=True)
class DockerHostSetting:
    """One entry of ``TIDEGATE_DOCKER_HOSTS``: a daemon URL and, optionally, its capacity
    (None: the daemon's own ``/info``)."""

    url: str
    cpus: float | None = None
    ram_gb: float | None = None


def _capacity(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _problem(f"{key} must be a positive number")
    return float(value)


def _docker_hosts(value: Any) -> tuple[DockerHostSetting, ...]:
    """Comma-separated daemon URLs, or a JSON list of URLs and
    ``{"url": ..., "cpu"?: N, "ramGB"?: N}`` objects."""
    text = _text(value).strip()
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if not isinstance(decoded, list):
            raise _problem('must be URLs separated by commas or a JSON list of URLs and '
                           '{"url": ..., "cpu": N, "ramGB": N} objects')
        entries = decoded
    else:
        entries = [part for part in (p.strip() for p in text.split(",")) if part]
    hosts: list[DockerHostSetting] = []
    for entry in entries:
        if isinstance(entry, str):
            hosts.append(DockerHostSetting(_docker_host(entry)))
        elif isinstance(entry, dict) and set(entry) <= {"url", "cpu", "ramGB"} \
                and isinstance(entry.get("url"), str):
            hosts.append(DockerHostSetting(_docker_host(entry["url"]),
                                           _capacity(entry, "cpu"), _capacity(entry, "ramGB")))
        else:
            raise _problem('each host must be a URL or {"url": ..., "cpu": N, "ramGB": N}')
    if len({h.url for h in hosts}) != len(hosts):
        raise _problem("lists a host twice")
    return tuple(hosts)


def _docker_user(value: Any) -> str:
    text = _text(value)
    if not _DOCKER_USER_RE.match(text) or int(text.partition(":")[0]) == 0:
        raise _problem("must be a numeric uid:gid other than root (e.g. 65534:65534)")
    return text


def _docker_network(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", text) or text in ("host",):
        raise _problem("must be a Docker network name other than host")
    return text


_REGISTRY_RE: Final = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _registry_auth(value: Any) -> dict[str, tuple[str, SecretStr]]:
    """``{"registry.example:5000": {"username": ..., "password": ...}}`` (never echoed)."""
    try:
        decoded = json.loads(_text(value))
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict) or not all(
            isinstance(registry, str) and _REGISTRY_RE.match(registry)
            and isinstance(entry, dict) and set(entry) == {"username", "password"}
            and all(isinstance(v, str) and v for v in entry.values())
            for registry, entry in decoded.items()):
        raise _problem('must be a JSON object {"registry[:port]": {"username": ..., '
                       '"password": ...}}')
    return {registry: (entry["username"], SecretStr(entry["password"]))
            for registry, entry in decoded.items()}


def _path(value: Any) -> Path:
    # Absolute at once: the compute sandbox binds paths by name, and a relative data
    # directory would name another place for a process whose working directory differs.
    return Path(_text(value)).expanduser().absolute()


def _addresses(value: Any) -> tuple[str, ...]:
    try:
        decoded = json.loads(_text(value))
    except ValueError:
        decoded = None
    if not isinstance(decoded, list) or not all(
            isinstance(a, str) and is_address(a) for a in decoded):
        raise _problem("must be a JSON list of addresses")
    return tuple(to_checksum_address(a) for a in decoded)


def _json_objects(value: Any) -> tuple[dict[str, Any], ...]:
    """A JSON list of objects (their keys are checked by the module that uses them)."""
    try:
        decoded = json.loads(_text(value))
    except ValueError:
        decoded = None
    if not isinstance(decoded, list) or not all(isinstance(e, dict) for e in decoded):
        raise _problem("must be a JSON list of objects")
    return tuple(decoded)


def _database_url(value: Any) -> SecretStr:
    if not re.match(r"^(postgres(ql)?|sqlite)://", _text(value)):
        raise _problem("must be postgresql://... or sqlite:///...")
    return value if isinstance(value, SecretStr) else SecretStr(value)


def _root_path(value: Any) -> str:
    prefix = _text(value).rstrip("/")
    if prefix and not re.match(r"^(/[A-Za-z0-9._~-]+)+$", prefix):
        raise _problem("must look like /prefix")
    return prefix


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_format(value: Any) -> str:
    form = _text(value).strip().lower()
    if form not in ("json", "text"):
        raise _problem("must be json or text")
    return form


def _log_level(value: Any) -> str:
    level = _text(value).strip().upper()
    if level not in _LOG_LEVELS:
        raise _problem("must be one of " + ", ".join(_LOG_LEVELS))
    return level


# A parser runs before pydantic's own check, on the whole (optional) type: so that a bad
# value yields exactly one problem, not one per member of ``T | None``.
Flag = Annotated[bool, BeforeValidator(_flag)]
MaybeFlag = Annotated[bool | None, BeforeValidator(_flag)]
Count = Annotated[int, BeforeValidator(_count)]
Positive = Annotated[int, BeforeValidator(_positive)]
Seconds = Annotated[float, BeforeValidator(_seconds())]
MaybeSeconds = Annotated[float | None, BeforeValidator(_seconds())]
MaybeUrl = Annotated[str | None, BeforeValidator(_url)]
Gateway = Annotated[str | None, BeforeValidator(_gateway)]
MaybeKey = Annotated[SecretStr | None, BeforeValidator(_private_key)]
UserPath = Annotated[Path, BeforeValidator(_path)]
MaybeUserPath = Annotated[Path | None, BeforeValidator(_path)]
MaybeJsonObjects = Annotated[tuple[dict[str, Any], ...] | None, BeforeValidator(_json_objects)]


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
    redis_url: str | None = field(default=None, repr=False)
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


class Settings(BaseSettings):
    """Everything configurable about one Tidegate process; build it with :meth:`from_env`.

    Frozen. ``provider_keys`` and ``network_urls`` hold the same form (single or map
    with the same chain ids), as the reference requires.
    """

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, extra="ignore", hide_input_in_errors=True,
        validate_default=False,  # defaults are values already, not text to parse
        # Values are parsed by the field validators below, so that every problem is
        # collected (pydantic-settings' own JSON decoding stops at the first).
        enable_decoding=False,
    )

    # --- reference Provider variables -------------------------------------------------
    provider_keys: Annotated[PerChain[SecretStr], BeforeValidator(
        _per_chain(_is_key, "a 32-byte hex private key", secret=True))] = Field(
        validation_alias="PROVIDER_PRIVATE_KEY")
    network_urls: Annotated[PerChain[str], BeforeValidator(
        _per_chain(_is_url, "an http(s) or ws(s) URL"))] = Field(
        validation_alias="NETWORK_URL", repr=False)  # RPC URLs often carry an API key
    universal_key: MaybeKey = Field(None, validation_alias="UNIVERSAL_PRIVATE_KEY")
    authorized_decrypters: Annotated[tuple[str, ...], BeforeValidator(_addresses)] = Field(
        (), validation_alias="AUTHORIZED_DECRYPTERS")
    address_file: MaybeUserPath = Field(None, validation_alias="ADDRESS_FILE")
    aquarius_url: MaybeUrl = Field(None, validation_alias="AQUARIUS_URL")
    operator_service_url: MaybeUrl = Field(None, validation_alias="OPERATOR_SERVICE_URL")
    provider_fee_tokens: Annotated[PerChain[str], BeforeValidator(
        _per_chain(is_address, "an Ethereum address"))] = Field(
        PerChain[str](), validation_alias="PROVIDER_FEE_TOKEN")
    allow_non_public_ip: MaybeFlag = Field(None, validation_alias="ALLOW_NON_PUBLIC_IP")
    max_checksum_length: Count = Field(DEFAULT_MAX_CHECKSUM_LENGTH,
                                       validation_alias="MAX_CHECKSUM_LENGTH")
    request_timeout: Seconds = Field(10.0, validation_alias="REQUEST_TIMEOUT")
    ipfs_gateway: Gateway = Field(DEFAULT_IPFS_GATEWAY, validation_alias="IPFS_GATEWAY")
    arweave_gateway: Gateway = Field(DEFAULT_ARWEAVE_GATEWAY, validation_alias="ARWEAVE_GATEWAY")
    log_level: Annotated[str, BeforeValidator(_log_level)] = Field(
        "INFO", validation_alias="LOG_LEVEL")
    log_format: Annotated[str, BeforeValidator(_log_format)] = Field(
        "json", validation_alias="LOG_FORMAT")
    # --- Tidegate settings ------------------------------------------------------------
    auth_token_secret: SecretStr | None = Field(
        None, validation_alias="TIDEGATE_AUTH_TOKEN_SECRET")
    allow_private_urls_setting: MaybeFlag = Field(
        None, validation_alias="TIDEGATE_ALLOW_PRIVATE_URLS")
    connect_timeout: Seconds = Field(5.0, validation_alias="TIDEGATE_CONNECT_TIMEOUT")
    read_timeout_setting: MaybeSeconds = Field(None, validation_alias="TIDEGATE_READ_TIMEOUT")
    relay_read_budget: Annotated[int, BeforeValidator(_relay_read_budget)] = Field(
        DEFAULT_RELAY_READ_BUDGET, validation_alias="TIDEGATE_RELAY_READ_BUDGET")
    # Outbound connections per purpose: a flood of one (unauthenticated probes) cannot
    # take the connections of another (paid downloads, compute inputs).
    download_connections: Positive = Field(200, validation_alias="TIDEGATE_DOWNLOAD_CONNECTIONS")
    probe_connections: Positive = Field(50, validation_alias="TIDEGATE_PROBE_CONNECTIONS")
    compute_fetch_connections: Positive = Field(
        20, validation_alias="TIDEGATE_COMPUTE_FETCH_CONNECTIONS")
    probe_timeout: Seconds = Field(15.0, validation_alias="TIDEGATE_PROBE_TIMEOUT")
    probes_per_client: Count = Field(4, validation_alias="TIDEGATE_PROBES_PER_CLIENT")
    # Inbound: how long and how much a client may take to send one request.
    header_timeout: Seconds = Field(10.0, validation_alias="TIDEGATE_HEADER_TIMEOUT")
    body_timeout: Seconds = Field(60.0, validation_alias="TIDEGATE_BODY_TIMEOUT")
    slow_request_after: Seconds = Field(2.0, validation_alias="TIDEGATE_SLOW_REQUEST_AFTER")
    slow_requests_per_client: Positive = Field(
        16, validation_alias="TIDEGATE_SLOW_REQUESTS_PER_CLIENT")
    max_header_bytes: Annotated[int, BeforeValidator(_at_least(1024))] = Field(
        32 * 1024, validation_alias="TIDEGATE_MAX_HEADER_BYTES")
    max_url_bytes: Annotated[int, BeforeValidator(_at_least(256))] = Field(
        16 * 1024, validation_alias="TIDEGATE_MAX_URL_BYTES")
    max_json_depth: Annotated[int, BeforeValidator(_at_least(2))] = Field(
        DEFAULT_MAX_JSON_DEPTH, validation_alias="TIDEGATE_MAX_JSON_DEPTH")
    rpc_timeout: Seconds = Field(10.0, validation_alias="TIDEGATE_RPC_TIMEOUT")
    chain_state_ttl: Annotated[float, BeforeValidator(_seconds(zero_allowed=True))] = Field(
        1.0, validation_alias="TIDEGATE_CHAIN_STATE_TTL")
    pending_tx_wait: Seconds = Field(5.0, validation_alias="TIDEGATE_PENDING_TX_WAIT")
    database_url: Annotated[SecretStr | None, BeforeValidator(_database_url)] = Field(
        None, validation_alias="TIDEGATE_DATABASE_URL")
    data_dir: UserPath = Field(default_factory=lambda: Path("data").absolute(),
                               validation_alias="TIDEGATE_DATA_DIR")
    max_encrypt_bytes: Count = Field(DEFAULT_MAX_ENCRYPT_BYTES,
                                     validation_alias="TIDEGATE_MAX_ENCRYPT_BYTES")
    root_path: Annotated[str, BeforeValidator(_root_path)] = Field(
        "", validation_alias="TIDEGATE_ROOT_PATH")
    access_log: Flag = Field(True, validation_alias="TIDEGATE_ACCESS_LOG")
    fast_routes: Flag = Field(True, validation_alias="TIDEGATE_FAST_ROUTES")
    access_fee_amount: Count = Field(0, validation_alias="TIDEGATE_ACCESS_FEE_AMOUNT")
    compute_status_signed: Flag = Field(False, validation_alias="TIDEGATE_COMPUTE_STATUS_SIGNED")
    indexer_setting: MaybeFlag = Field(None, validation_alias="TIDEGATE_INDEXER")
    indexer_start_block: Count = Field(0, validation_alias="TIDEGATE_INDEXER_START_BLOCK")
    indexer_confirmations: Count = Field(0, validation_alias="TIDEGATE_INDEXER_CONFIRMATIONS")
    indexer_poll_interval: Seconds = Field(1.0, validation_alias="TIDEGATE_INDEXER_POLL_INTERVAL")
    indexer_node_fields_v4: Flag = Field(False,
                                         validation_alias="TIDEGATE_INDEXER_NODE_FIELDS_V4")
    # --- compute (local engine) -------------------------------------------------------
    compute_environments: MaybeJsonObjects = Field(
        None, validation_alias="TIDEGATE_COMPUTE_ENVIRONMENTS")
    """``TIDEGATE_COMPUTE_ENVIRONMENTS`` (JSON list of objects); None: the default."""
    compute_runtimes: MaybeJsonObjects = Field(None, validation_alias="TIDEGATE_COMPUTE_RUNTIMES")
    """``TIDEGATE_COMPUTE_RUNTIMES`` (JSON list of objects); None: the default table."""
    compute_unsafe_no_sandbox: Flag = Field(
        False, validation_alias="TIDEGATE_COMPUTE_UNSAFE_NO_SANDBOX")
    compute_dir: MaybeUserPath = Field(None, validation_alias="TIDEGATE_COMPUTE_DIR")
    compute_sandbox_uid: Count = Field(61000, validation_alias="TIDEGATE_COMPUTE_SANDBOX_UID")
    compute_max_processes: Count = Field(64, validation_alias="TIDEGATE_COMPUTE_MAX_PROCESSES")
    compute_tmp_mb: Count = Field(64, validation_alias="TIDEGATE_COMPUTE_TMP_MB")
    compute_max_output_files: Count = Field(
        256, validation_alias="TIDEGATE_COMPUTE_MAX_OUTPUT_FILES")
    compute_cgroups: Flag = Field(True, validation_alias="TIDEGATE_COMPUTE_CGROUPS")
    compute_cgroup_parent: str | None = Field(
        None, validation_alias="TIDEGATE_COMPUTE_CGROUP_PARENT")
    """A cgroup path (inside the hierarchy) to create job cgroups under; None: our own."""
    compute_seccomp: Flag = Field(True, validation_alias="TIDEGATE_COMPUTE_SECCOMP")
    compute_min_free_mb: Count = Field(1024, validation_alias="TIDEGATE_COMPUTE_MIN_FREE_MB")
    # --- compute (Docker engine) ------------------------------------------------------
    docker_host: Annotated[str | None, BeforeValidator(_docker_host)] = Field(
        None, validation_alias="DOCKER_HOST", repr=False)
    """``DOCKER_HOST``: with it, the Docker engine runs the default environments."""
    docker_hosts: Annotated[tuple[DockerHostSetting, ...],
                            BeforeValidator(_docker_hosts)] = Field(
        (), validation_alias="TIDEGATE_DOCKER_HOSTS", repr=False)
    """Several daemons (jobs placed by capacity); with it, ``DOCKER_HOST`` is ignored."""
    docker_tls_verify: Flag = Field(False, validation_alias="DOCKER_TLS_VERIFY")
    docker_cert_path: MaybeUserPath = Field(None, validation_alias="DOCKER_CERT_PATH")
    """``ca.pem``, ``cert.pem``, ``key.pem`` for a ``tcp://`` daemon with TLS."""
    docker_user: Annotated[str, BeforeValidator(_docker_user)] = Field(
        "65534:65534", validation_alias="TIDEGATE_DOCKER_USER")
    docker_network: Annotated[str, BeforeValidator(_docker_network)] = Field(
        "bridge", validation_alias="TIDEGATE_DOCKER_NETWORK")
    docker_pull_timeout: Seconds = Field(600.0, validation_alias="TIDEGATE_DOCKER_PULL_TIMEOUT")
    docker_require_checksum: Flag = Field(
        False, validation_alias="TIDEGATE_DOCKER_REQUIRE_CHECKSUM")
    docker_image_cache_gb: Annotated[float | None, Field(gt=0)] = Field(
        None, validation_alias="TIDEGATE_DOCKER_IMAGE_CACHE_GB")
    """Images Tidegate pulled are removed, least recently used first, beyond this many
    GB (unset: never removed)."""
    docker_registry_auth: Annotated[dict[str, tuple[str, SecretStr]],
                                    BeforeValidator(_registry_auth)] = Field(
        default_factory=dict, validation_alias="TIDEGATE_DOCKER_REGISTRY_AUTH", repr=False)
    """Registry -> (username, password) for pulls (``TIDEGATE_DOCKER_REGISTRY_AUTH``)."""
    rate_limit: Annotated[RateLimitSettings, SkipValidation] = Field(
        default_factory=RateLimitSettings)
    """``TIDEGATE_RATE_LIMIT*``, ``TIDEGATE_TRUSTED_PROXIES``, ``TIDEGATE_REDIS_URL`` (read by
    :func:`rate_limit_from_env`, which :meth:`from_env` calls)."""

    @model_validator(mode="before")
    @classmethod
    def _trim(cls, data: Any) -> Any:
        """Strip every value; an empty one is unset, except where empty means off or none."""
        if not isinstance(data, Mapping):
            return data
        trimmed: dict[str, Any] = {}
        for name, value in data.items():
            if isinstance(value, SecretStr | str):
                text = _text(value).strip()
                if text == "" and name not in _EMPTY_IS_A_VALUE:
                    continue
                value = SecretStr(text) if isinstance(value, SecretStr) else text
            trimmed[name] = value
        return trimmed

    @field_validator("network_urls")
    @classmethod
    def _same_form_as_keys(cls, urls: PerChain[str], info: ValidationInfo) -> PerChain[str]:
        keys = info.data.get("provider_keys")  # absent when that variable is itself wrong
        if isinstance(keys, PerChain):
            if keys.is_map != urls.is_map:
                raise _problem("and PROVIDER_PRIVATE_KEY must both be single or both JSON "
                               "encoded")
            if set(keys.by_chain) != set(urls.by_chain):
                raise _problem("and PROVIDER_PRIVATE_KEY list different chain ids")
        return urls

    # --- derived values ---------------------------------------------------------------
    @property
    def network_url(self) -> str | None:
        """The single ``NETWORK_URL`` (None in the JSON map form)."""
        return self.network_urls.single

    @property
    def allow_private_urls(self) -> bool:
        """``TIDEGATE_ALLOW_PRIVATE_URLS``, else ``ALLOW_NON_PUBLIC_IP``, else false."""
        for value in (self.allow_private_urls_setting, self.allow_non_public_ip):
            if value is not None:
                return value
        return False

    @property
    def read_timeout(self) -> float:
        """``TIDEGATE_READ_TIMEOUT``, else ``REQUEST_TIMEOUT`` (10 s by default)."""
        return self.read_timeout_setting or self.request_timeout

    @property
    def indexer_enabled(self) -> bool:
        """``TIDEGATE_INDEXER``; by default on unless ``AQUARIUS_URL`` is set."""
        if self.indexer_setting is not None:
            return self.indexer_setting
        return self.aquarius_url is None

    @property
    def docker_tls(self) -> bool:
        """TLS (always verified) to a TCP daemon: ``DOCKER_TLS_VERIFY`` or an https URL."""
        return self.docker_tls_verify or (self.docker_host or "").startswith("https://")

    @property
    def docker_urls(self) -> tuple[DockerHostSetting, ...]:
        """The daemons to run on: ``TIDEGATE_DOCKER_HOSTS``, else ``DOCKER_HOST``."""
        if self.docker_hosts:
            return self.docker_hosts
        return (DockerHostSetting(self.docker_host),) if self.docker_host else ()

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "tidegate.db"

    @property
    def chain_independent_key(self) -> SecretStr:
        """The key for duties of no particular chain (:func:`chain_independent_key`)."""
        key = chain_independent_key(self.universal_key, self.provider_keys)
        if key is None:  # PROVIDER_PRIVATE_KEY is required, so never on a built Settings
            raise ConfigurationError("PROVIDER_PRIVATE_KEY is required")
        return key

    # --- construction -----------------------------------------------------------------
    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what from_env read: no .env file, no secrets directory, and a given
        # mapping is never mixed with the process environment.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (``os.environ`` by default).

        Raises ConfigurationError naming every bad or missing variable.
        """
        env = os.environ if environ is None else environ
        rate_problems: list[str] = []
        rate_limit = rate_limit_from_env(env, rate_problems)
        values = _Environment(cls, env)()
        try:
            settings = cls(**values, rate_limit=rate_limit)
        except ValidationError as exc:
            raise ConfigurationError(
                "invalid configuration: " + "; ".join(_problems(exc) + rate_problems)) from None
        if rate_problems:
            raise ConfigurationError("invalid configuration: " + "; ".join(rate_problems))
        return settings


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over ``environ``, secrets wrapped at once.

    Wrapping here keeps secrets masked even in pydantic-settings' own debug output.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = dict(environ)  # names are case-sensitive, as the reference reads them

    def __call__(self) -> dict[str, Any]:
        return {name: SecretStr(value) if name in _SECRET_VARIABLES and isinstance(value, str)
                else value for name, value in super().__call__().items()}


def _problems(exc: ValidationError) -> list[str]:
    """One line per error: the variable, then what is wrong (never the value)."""
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        name = ".".join(str(part) for part in error["loc"]) or "configuration"
        if error["type"] == "missing":
            problems.append(f"{name} is required")
        elif error["type"] == _PROBLEM:
            problems.append(f"{name} {error['msg']}")
        else:  # pydantic's own wording names the expected type, not the value
            problems.append(f"{name} is invalid: {error['msg']}")
    return problems
