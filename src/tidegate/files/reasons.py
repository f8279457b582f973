"""Why a file is not valid, as fileinfo reports it: a stable code a publisher can act on.

A reason names the kind of failure only, never the URL, the host or its addresses (a
fileinfo caller may not see a published file's URL). :data:`REASONS` is the list the
docs give (docs/compatibility.md); every code returned here is in it.
"""

from __future__ import annotations

from typing import Final

from tidegate.errors import ServiceUnavailableError, TidegateError, UpstreamTimeout
from tidegate.files.safe_fetch import UnsafeUrlError, UpstreamTooLargeError

__all__ = ["REASONS", "reason_for_call_error", "reason_for_error", "reason_for_status"]

REASONS: Final[dict[str, str]] = {
    "invalid_url": "the URL cannot be fetched as given: not http(s), no host, credentials "
                   "in it, or malformed",
    "unresolved_host": "the host name does not resolve (DNS)",
    "refused_address": "the host resolves to a private, loopback or other non-public "
                       "address, which this provider does not fetch",
    "too_many_redirects": "more redirects than the provider follows",
    "unreachable": "no connection, or the server broke the connection or the protocol",
    "timeout": "the server did not connect or answer within the provider's time limits",
    "not_found": "the server answered 404 or 410",
    "forbidden": "the server answered 401 or 403 (headers or credentials needed?)",
    "bad_status": "the server answered another status outside 2xx (see status)",
    "too_large": "the file is larger than the provider's maximum file size",
    "interrupted": "the body broke off while it was read for the checksum",
    "no_details": "the answer gave no type, length or file name",
    "call_failed": "smartcontract: the call reverted or could not be made",
    "chain_unavailable": "smartcontract: the chain's RPC did not answer",
}


def reason_for_error(exc: TidegateError) -> str:
    """The reason for an error raised while fetching a file (``safe_fetch``)."""
    if isinstance(exc, UnsafeUrlError):
        return exc.reason if exc.reason in REASONS else "invalid_url"
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, UpstreamTooLargeError):
        return "too_large"
    return "unreachable"  # UpstreamUnavailableError: refused, reset, bad protocol


def reason_for_status(status: int) -> str:
    """The reason for an answer outside 2xx."""
    if status in (404, 410):
        return "not_found"
    if status in (401, 403):
        return "forbidden"
    return "bad_status"


def reason_for_call_error(exc: TidegateError) -> str:
    """The reason a smartcontract file's call failed."""
    return "chain_unavailable" if isinstance(exc, ServiceUnavailableError) else "call_failed"
