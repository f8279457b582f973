"""Exceptions -> JSON, in one place.

Every error body is ``{"error": <human text>, "code": <stable code>}`` (plus
``errors`` for validation). Unknown exceptions become a scrubbed 500: the request is
never echoed back and nothing but the exception type is logged with the route.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tidegate.api.cors import allow_any_origin
from tidegate.api.responses import JsonResponse
from tidegate.errors import ClientDisconnectedError, TidegateError
from tidegate.logs import EXCEPTION_EXTRA

log = logging.getLogger("tidegate.errors")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


async def tidegate_error(request: Request, exc: Exception) -> Response:
    return error_response(exc, request.url.path)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    text = {
        404: "Not found.",
        405: "Method not allowed.",
    }.get(exc.status_code, str(exc.detail))
    return allow_any_origin(
        JsonResponse({"error": text, "code": code}, status_code=exc.status_code,
                     headers=dict(exc.headers or {}))
    )


def error_response(exc: Exception, route: str) -> Response:
    """The response for any exception raised by an endpoint.

    Unknown exceptions log their type and the route in the message; the JSON log line
    also carries the exception scrubbed (type, message without URLs or keys, frames:
    file, line, function), never the request.
    """
    if isinstance(exc, ClientDisconnect | ClientDisconnectedError):
        # The client left (mid-body, or while we waited on an origin): nobody reads an
        # answer, and it is no failure of ours. 499 in the metrics and access log.
        log.info("%s: client disconnected", route)
        gone = ClientDisconnectedError("The client disconnected.")
        return JsonResponse(gone.body(), status_code=gone.status)
    if isinstance(exc, TidegateError):
        if exc.status >= 500:
            log.warning("%s failed: %s (%s)", route, exc.code, type(exc.__cause__).__name__)
        return allow_any_origin(JsonResponse(exc.body(), status_code=exc.status,
                                             headers=exc.headers or None))
    log.error("%s failed: unexpected %s", route, type(exc).__name__,
              extra={EXCEPTION_EXTRA: exc})
    return allow_any_origin(
        JsonResponse({"error": "Internal server error.", "code": "internal_error"},
                     status_code=500)
    )


EXCEPTION_HANDLERS = {
    TidegateError: tidegate_error,
    HTTPException: http_error,
}
