"""HTTP clients for a provider (classic Provider REST API) and a metadata cache (Aquarius).

The provider's service map (``GET /`` → ``serviceEndpoints``) is read once and used
for every call, as ocean.py and ocean.js do, so a provider mounted under a prefix
works; the reference paths are the fallback. "Did not answer" (no connection, a
timeout) and "refused" (an HTTP error, with the provider's own message) are distinct
errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

import httpx

from tidegate import __version__
from tidegate.consumer.errors import (
    ConsumerError,
    ProviderRefusedError,
    ServiceUnreachableError,
    UsageProblem,
    origin,
)

DEFAULT_PATHS = {
    "nonce": ("GET", "/api/services/nonce"),
    "initialize": ("GET", "/api/services/initialize"),
    "fileinfo": ("POST", "/api/services/fileinfo"),
    "download": ("GET", "/api/services/download"),
    "computeEnvironments": ("GET", "/api/services/computeEnvironments"),
    "initializeCompute": ("POST", "/api/services/initializeCompute"),
    "computeStart": ("POST", "/api/services/compute"),
    "computeStatus": ("GET", "/api/services/compute"),
    "computeResult": ("GET", "/api/services/computeResult"),
}
_ERROR_BODY_LIMIT = 64 * 1024


def http_client(timeout: float = 30.0) -> httpx.Client:
    """The one HTTP client of a command: a read timeout, redirects followed."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True,
                        headers={"User-Agent": f"tidegate-consumer/{__version__}"})


def check_url(url: str, option: str) -> str:
    text = url.strip().rstrip("/")
    if not text.startswith(("http://", "https://")) or len(text) <= len("https://"):
        raise UsageProblem(f"{option} must be an http:// or https:// URL")
    return text


def parse_nonce(value: object) -> int:
    """The provider's last nonce: a JSON integer (Tidegate) or a string (the reference)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError("a boolean is not a nonce")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return math.ceil(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return int(Decimal(text).to_integral_value(rounding=ROUND_CEILING))
        except InvalidOperation:
            raise ValueError("not a number") from None
    raise ValueError("not a number")


def _json(response: httpx.Response, what: str, base: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ConsumerError(f"the service at {origin(base)} answered {what} with something "
                            f"that is not JSON") from None


class MetadataCache:
    """An Aquarius-compatible metadata API (Tidegate serves one at the provider URL)."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url

    def resolve(self, did: str) -> dict[str, Any]:
        if not did.startswith("did:op:") or len(did) > 200:
            raise UsageProblem(f"{did[:80]!r} is not an Ocean DID (did:op:…)")
        try:
            response = self.http.get(f"{self.url}/api/aquarius/assets/ddo/{did}")
        except httpx.TransportError as exc:
            raise ServiceUnreachableError("metadata cache", self.url, exc) from None
        if response.status_code == 404:
            raise ConsumerError(f"the metadata cache at {origin(self.url)} knows no asset {did}")
        if response.status_code != 200:
            raise ProviderRefusedError(f"to resolve {did}", response.status_code,
                                       response.content[:_ERROR_BODY_LIMIT],
                                       who="metadata cache")
        ddo = _json(response, "the DDO request", self.url)
        if not isinstance(ddo, dict) or not isinstance(ddo.get("services"), list):
            raise ConsumerError(f"the metadata cache at {origin(self.url)} answered {did} "
                                f"with no services")
        return ddo


class Provider:
    """One provider, by its base URL."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url
        self._root: dict[str, Any] | None = None

    @property
    def origin(self) -> str:
        return origin(self.url)

    def root(self) -> dict[str, Any]:
        if self._root is None:
            try:
                response = self.http.get(self.url + "/")
            except httpx.TransportError as exc:
                raise ServiceUnreachableError("provider", self.url, exc) from None
            data: Any = None
            if response.status_code == 200:
                try:
                    data = response.json()
                except ValueError:
                    data = None
            self._root = data if isinstance(data, dict) else {}
        return self._root

    def endpoint(self, name: str) -> tuple[str, str]:
        """(method, URL) of a service, from the provider's service map if it lists it."""
        method, path = DEFAULT_PATHS[name]
        listed = self.root().get("serviceEndpoints")
        if isinstance(listed, dict):
            for key, value in listed.items():
                if (key.lower() == name.lower() and isinstance(value, list) and len(value) == 2
                        and all(isinstance(v, str) for v in value)):
                    method, path = value[0], value[1]
                    break
        return method.upper(), self.url + "/" + path.lstrip("/")

    def provider_address(self, chain_id: int) -> str | None:
        root = self.root()
        addresses = root.get("providerAddresses")
        if isinstance(addresses, dict) and isinstance(addresses.get(str(chain_id)), str):
            return str(addresses[str(chain_id)])
        single = root.get("providerAddress")
        return single if isinstance(single, str) else None

    def request(self, name: str, what: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        method, url = self.endpoint(name)
        try:
            response = self.http.request(method, url, params=params, json=json)
        except httpx.TransportError as exc:
            raise ServiceUnreachableError("provider", self.url, exc) from None
        if response.status_code not in ok:
            raise ProviderRefusedError(what, response.status_code,
                                       response.content[:_ERROR_BODY_LIMIT])
        return response

    def json(self, name: str, what: str, **kwargs: Any) -> Any:
        return _json(self.request(name, what, **kwargs), what, self.url)

    def nonce(self, address: str) -> int:
        data = self.json("nonce", "the nonce request", params={"userAddress": address})
        try:
            return parse_nonce(data.get("nonce") if isinstance(data, dict) else None)
        except ValueError:
            raise ConsumerError(f"the provider at {self.origin} answered a nonce that is "
                                f"not a number") from None

    @contextmanager
    def stream(self, name: str, what: str, params: Mapping[str, Any],
               headers: Mapping[str, str] | None = None,
               ok: tuple[int, ...] = (200, 206)) -> Iterator[httpx.Response]:
        """A streamed GET; an HTTP error becomes :class:`ProviderRefusedError`.

        A connection that breaks while the caller reads the body raises
        :class:`TransferInterruptedError` (the caller may resume).
        """
        method, url = self.endpoint(name)
        started = False
        try:
            with self.http.stream(method, url, params=params, headers=headers) as response:
                if response.status_code not in ok:
                    body = b""
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) >= _ERROR_BODY_LIMIT:
                            break
                    raise ProviderRefusedError(what, response.status_code,
                                               body[:_ERROR_BODY_LIMIT])
                started = True
                yield response
        except httpx.TransportError as exc:
            if started:
                raise TransferInterruptedError(
                    f"the connection to the provider at {self.origin} broke during {what} "
                    f"({type(exc).__name__})") from None
            raise ServiceUnreachableError("provider", self.url, exc) from None


class TransferInterruptedError(ConsumerError):
    """The body of a streamed answer stopped coming."""
