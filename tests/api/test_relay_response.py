"""A download's upstream connection is released however the response ends."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from tests.unit.files.test_safe_fetch import HOST, Firehose, assert_dropped, fetcher
from tidegate.api.endpoints.access import RelayResponse
from tidegate.files.address_policy import PinnedAsyncClient
from tidegate.files.open import FileStream

SCOPE = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "path": "/"}


async def _receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


@pytest.mark.parametrize("fail_on", ["http.response.start", "http.response.body"])
async def test_the_origin_connection_is_dropped_when_the_client_goes_away(
        fail_on: str) -> None:
    firehose = Firehose()
    try:
        async with PinnedAsyncClient() as client:
            upstream = await fetcher(client).open("GET", f"http://{HOST}:{firehose.port}/big")
            stream = FileStream(200, {"content-type": "application/octet-stream"}, "big",
                                _upstream=upstream)
            assert client.read_budget.streams == 1

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == fail_on:
                    raise OSError("the client went away")

            with pytest.raises((ClientDisconnect, OSError)):
                await RelayResponse(stream)(SCOPE, _receive, send)
            await assert_dropped(firehose)
            assert client.read_budget.streams == 0
    finally:
        firehose.close()
