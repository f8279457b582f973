"""Socket reads of the file client: sized by a shared budget, really used by aiohttp."""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.files.test_safe_fetch import HOST, Firehose, fetcher

from tidegate.files.address_policy import PinnedAsyncClient
from tidegate.files.read_budget import MAX_READ, MIN_READ, ReadBudget
from tidegate.files.safe_fetch import UpstreamTooLargeError


@pytest.mark.parametrize(("total", "streams", "expected"), [
    (4 << 20, 0, MAX_READ), (4 << 20, 1, MAX_READ), (4 << 20, 16, 256 << 10),
    (4 << 20, 17, 128 << 10), (4 << 20, 64, 64 << 10), (4 << 20, 200, MIN_READ),
    (4 << 20, 1000, MIN_READ), (100_000, 1, 64 << 10), (MIN_READ, 3, MIN_READ),
])
def test_read_size_is_the_share_as_a_power_of_two(
        total: int, streams: int, expected: int) -> None:
    budget = ReadBudget(total)
    for _ in range(streams):
        budget.stream_started()
    assert budget.read_size == expected
    for _ in range(streams + 1):  # one end too many must not go negative
        budget.stream_ended()
    assert (budget.streams, budget.read_size) == (0, ReadBudget(total).read_size)


def test_a_budget_below_one_minimum_read_is_refused() -> None:
    with pytest.raises(ValueError):
        ReadBudget(MIN_READ - 1)


@pytest.mark.parametrize(("total", "largest"), [(MIN_READ, MIN_READ), (4 << 20, MAX_READ)])
async def test_pieces_never_exceed_the_read_size(total: int, largest: int) -> None:
    # The origin pushes big segments (4 MiB send buffer), so a plain Protocol would
    # get 256 KiB per read; the budgeted protocol gets at most its share.
    firehose = Firehose(send_buffer=4 * 1024 * 1024)
    try:
        async with PinnedAsyncClient(read_budget=total) as client:
            response = await fetcher(client).open("GET", f"http://{HOST}:{firehose.port}/big")
            assert client.read_budget.streams == 1
            pieces = response.iter_pieces()
            sizes = []
            async for piece in pieces:
                sizes.append(len(piece))
                if len(sizes) == 200:
                    break
                await asyncio.sleep(0)  # let the socket fill up between reads
            await pieces.aclose()  # type: ignore[attr-defined]
            assert client.read_budget.streams == 0
            assert max(sizes) <= largest
            if largest == MIN_READ:
                assert max(sizes) == MIN_READ  # a full read is exactly the share
            assert await asyncio.to_thread(firehose.done.wait, 5)
    finally:
        firehose.close()


async def test_every_way_a_body_ends_releases_its_share() -> None:
    firehose = Firehose()
    try:
        async with PinnedAsyncClient() as client:
            fetch = fetcher(client, max_bytes=300_000)
            budget = client.read_budget
            with pytest.raises(UpstreamTooLargeError):  # over the cap mid-body
                async for _ in (await fetch.open(
                        "GET", f"http://{HOST}:{firehose.port}/big")).iter_pieces():
                    assert budget.streams == 1
            assert (budget.streams, budget.read_size) == (0, MAX_READ)
    finally:
        firehose.close()
