import logging

import pytest

from tidegate.api.errors import error_response
from tidegate.errors import ServiceUnavailableError, ValidationError


def test_unexpected_exception_is_scrubbed_500(caplog: pytest.LogCaptureFixture) -> None:
    secret = "https://user:key@rpc.example/v3/0xdeadbeef"
    with caplog.at_level(logging.DEBUG):
        response = error_response(RuntimeError(f"connection to {secret} failed"), "GET /x")
    assert response.status_code == 500
    assert secret.encode() not in bytes(response.body)
    assert b'"code":"internal_error"' in bytes(response.body)
    assert secret not in caplog.text
    assert "RuntimeError" in caplog.text


def test_tidegate_errors_keep_status_and_code() -> None:
    response = error_response(ServiceUnavailableError("The chain RPC is down."), "GET /x")
    assert response.status_code == 503
    response = error_response(ValidationError({"a": "The a field is required."}), "GET /x")
    assert response.status_code == 400
    assert b'"errors":{"a":"The a field is required."}' in bytes(response.body)


def test_unexpected_exception_is_logged_scrubbed_with_its_traceback() -> None:
    import io
    import json

    from tidegate.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tidegate.errors")
    logger.addHandler(handler)
    secret = "https://user:key@rpc.example/v3/0x" + "ab" * 32
    try:
        try:
            raise KeyError(f"lookup of {secret}")
        except KeyError as exc:
            error_response(exc, "GET /x")
    finally:
        logger.removeHandler(handler)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["exc_type"] == "KeyError" and line["msg"] == "GET /x failed: unexpected KeyError"
    assert line["traceback"] and {"file", "line", "function"} <= set(line["traceback"][0])
    assert "rpc.example" not in stream.getvalue() and "ab" * 32 not in stream.getvalue()
