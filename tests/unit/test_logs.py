"""logs.py: JSON lines keep an exception's type and frames, never its secrets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tidegate.logs import MAX_MESSAGE, JsonFormatter, scrub

KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
URL = "https://user:pw@files.example.test/private/data.csv?token=abc123&sig=xyz"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tidegate.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def _fail_deep(secret: str) -> None:
    user_secret = secret  # a local value: must never reach the log
    raise ValueError(f"could not open {URL} with key {user_secret} (password=hunter2)")


async def test_logger_exception_in_a_request_handler(json_log: io.StringIO) -> None:
    log = logging.getLogger("tidegate.test_logs")

    async def endpoint(request: Request) -> JSONResponse:
        try:
            _fail_deep(request.query_params["key"])
        except ValueError:
            log.exception("download failed for a %s file", "url")
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/x", endpoint)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/x", params={"key": KEY})).status_code == 200

    [line] = lines(json_log)
    assert line["level"] == "ERROR" and line["msg"] == "download failed for a url file"
    assert line["exc_type"] == "ValueError"
    message = str(line["exc_message"])
    assert message.startswith("could not open https://<redacted> with key <hex redacted>")
    assert "password=<redacted>" in message
    frames = line["traceback"]
    assert isinstance(frames, list)
    assert [frame["function"] for frame in frames][-2:] == ["endpoint", "_fail_deep"]
    assert all(set(frame) == {"file", "line", "function"} for frame in frames)
    assert frames[-1]["file"].endswith("test_logs.py") and frames[-1]["line"] > 0
    text = json_log.getvalue()
    for secret in (KEY, KEY[2:], "hunter2", "files.example.test", "token=abc123", "pw@",
                   "user_secret", "query_params"):
        assert secret not in text, secret


def test_chained_causes_are_listed_and_scrubbed(json_log: io.StringIO) -> None:
    log = logging.getLogger("tidegate.test_logs")
    try:
        try:
            raise ConnectionError(f"Connection timeout to host {URL}")
        except ConnectionError as exc:
            raise RuntimeError("the RPC failed") from exc
    except RuntimeError:
        log.exception("chain call failed")
    [line] = lines(json_log)
    assert line["exc_type"] == "RuntimeError"
    assert line["exc_causes"] == [{"type": "ConnectionError",
                                   "message": "Connection timeout to host https://<redacted>"}]


def test_from_none_hides_the_context(json_log: io.StringIO) -> None:
    log = logging.getLogger("tidegate.test_logs")
    try:
        try:
            raise KeyError(KEY)
        except KeyError:
            raise LookupError("not found") from None
    except LookupError:
        log.exception("lookup")
    [line] = lines(json_log)
    assert "exc_causes" not in line and KEY not in json_log.getvalue()


def test_records_without_an_exception_stay_four_fields(json_log: io.StringIO) -> None:
    logging.getLogger("tidegate.test_logs").info("started %d workers", 2)
    [line] = lines(json_log)
    assert set(line) == {"ts", "level", "logger", "msg"} and line["msg"] == "started 2 workers"


def test_a_broken_exception_str_keeps_the_line(json_log: io.StringIO) -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    try:
        raise Broken
    except Broken:
        logging.getLogger("tidegate.test_logs").exception("odd")
    [line] = lines(json_log)
    assert line["msg"] == "odd" and line["exc_type"] == "Broken"


@pytest.mark.parametrize(("text", "expected"), [
    ("GET /api/services/download?documentId=did:op:1&nonce=5 failed",
     "GET /api/services/download?<redacted> failed"),
    ("Authorization: Bearer abc.def.ghi", "Authorization: <redacted> <redacted>"),
    ("bearer sk_live_123", "bearer <redacted>"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "token <jwt redacted>"),
    ("{'api_key': 'k-123', 'n': 1}", "{'api_key': <redacted>, 'n': 1}"),
    ("signature=0x" + "ab" * 65, "signature=<redacted>"),
    ("tx " + KEY + " reverted", "tx <hex redacted> reverted"),
    ("postgresql://tidegate:s3cret@db:5432/x down", "postgresql://<redacted> down"),
    ("plain words, 42 items", "plain words, 42 items"),
])
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_scrub_bounds_the_length() -> None:
    assert len(scrub("x" * 10_000)) == MAX_MESSAGE + 1
