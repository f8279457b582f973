"""The one error tree of Tidegate.

Every failure a client can see is a :class:`TidegateError` subclass carrying an HTTP
status, a stable machine-readable ``code`` and a *safe* human message. Only
``tidegate.api.errors`` turns these into HTTP responses; domain code raises them and
translates third-party exceptions at the boundary (``raise ... from exc``).

Messages must never contain a URL, a key, a signature or a decrypted document.
"""

from __future__ import annotations

from collections.abc import Mapping


class TidegateError(Exception):
    """Base of every error Tidegate reports to a client."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def body(self) -> dict[str, object]:
        """The JSON body for this error (without the status)."""
        return {"error": self.message, "code": self.code}

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After`` of a 429)."""
        return {}


class BadRequestError(TidegateError):
    status = 400
    code = "bad_request"


class ValidationError(BadRequestError):
    """Request parameters failed validation; ``errors`` maps field -> message."""

    code = "validation_error"

    def __init__(self, errors: Mapping[str, str], message: str = "Validation error") -> None:
        super().__init__(message)
        self.errors = dict(errors)

    def body(self) -> dict[str, object]:
        return {"error": self.message, "code": self.code, "errors": self.errors}


class UnauthorizedError(TidegateError):
    """Bad signature, bad or revoked token, or a nonce that was already used."""

    status = 401
    code = "unauthorized"


class ForbiddenError(TidegateError):
    status = 403
    code = "forbidden"


class NotFoundError(TidegateError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(TidegateError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLargeError(TidegateError):
    status = 413
    code = "payload_too_large"


class RateLimitedError(TidegateError):
    """Too many requests from one client address or signer."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ClientDisconnectedError(TidegateError):
    """The client went away before its request was answered.

    Not a failure of ours: logged at INFO and counted as 499 (nginx's "client closed
    request"), never as a 500. No one reads the answer.
    """

    status = 499
    code = "client_disconnected"


class UpstreamError(TidegateError):
    """An asset's origin answered badly (before any byte was streamed)."""

    status = 502
    code = "upstream_error"


class UpstreamTimeout(TidegateError):
    status = 504
    code = "upstream_timeout"


class ServiceUnavailableError(TidegateError):
    """A dependency (chain RPC, store, metadata source) is unavailable."""

    status = 503
    code = "service_unavailable"


class ConfigurationError(Exception):
    """Invalid configuration detected at start-up (never sent to a client)."""
