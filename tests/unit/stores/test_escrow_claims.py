"""The escrow claim table, the same tests against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.conftest import open_store
from tidegate.stores.base import CLAIM_PENDING

LEASE = 60_000


async def test_a_claim_is_queued_once_and_taken_by_one_holder(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.add_claim("job-1", 8996, '{"a": 1}', 1_000)
        assert not await store.add_claim("job-1", 8996, '{"a": 2}', 2_000)  # unchanged
        row = await store.get_claim("job-1")
        assert row is not None
        assert (row.state, row.attempts, row.document, row.chain_id) == (
            CLAIM_PENDING, 0, '{"a": 1}', 8996)
        taken = await store.take_claims("me", 1_000, LEASE, 10)
        assert [r.job_id for r in taken] == ["job-1"]
        # Leased: nobody else gets it until the lease runs out, not even by its id.
        assert await store.take_claims("other", 2_000, LEASE, 10) == []
        assert await store.take_claims("other", 2_000, LEASE, 10, job_id="job-1") == []
        assert [r.job_id for r in await store.take_claims("other", 1_000 + LEASE + 1,
                                                          LEASE, 10)] == ["job-1"]
        # The first holder lost its lease: its updates change nothing.
        assert not await store.mark_claim_sent("job-1", "me", "0xabc", 3_000)
        assert not await store.finish_claim("job-1", "me", "claimed", "0xabc", "", 3_000)
        assert await store.mark_claim_sent("job-1", "other", "0xabc", 3_000)
        assert (await store.get_claim("job-1")).tx_hash == "0xabc"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_a_failed_attempt_is_counted_and_due_again_later(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        await store.add_claim("job-2", 1, "{}", 0)
        assert len(await store.take_claims("me", 0, LEASE, 10)) == 1
        assert await store.retry_claim_later("job-2", "me", "rpc down", 15_000, 10)
        assert await store.take_claims("me", 14_999, LEASE, 10) == []  # not due yet
        # Taking it by id ignores when it is due (the first attempt right after queueing).
        assert len(await store.take_claims("me", 100, LEASE, 10, job_id="job-2")) == 1
        assert await store.retry_claim_later("job-2", "me", "rpc down again", 45_000, 200)
        again = await store.get_claim("job-2")
        assert again is not None
        assert (again.attempts, again.last_error, again.next_attempt_ms) == (
            2, "rpc down again", 45_000)
        assert len(await store.take_claims("me", 45_000, LEASE, 10)) == 1
        assert await store.finish_claim("job-2", "me", "claimed", "0xdef", "claimed 5", 45_001)
        final = await store.get_claim("job-2")
        assert final is not None
        assert (final.state, final.tx_hash, final.attempts) == ("claimed", "0xdef", 3)
        # Final: never taken again, however late.
        assert await store.take_claims("me", 10**12, LEASE, 10) == []
        assert [r.job_id for r in await store.list_claims("claimed")] == ["job-2"]
        assert await store.list_claims(CLAIM_PENDING) == []
    finally:
        await store.close()


async def test_concurrent_takers_never_share_a_claim(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        for i in range(30):
            await stores[0].add_claim(f"job-{i:02}", 1, "{}", i)
        batches = await asyncio.gather(*(
            stores[i % 4].take_claims(f"holder-{i}", 100, LEASE, 5) for i in range(12)))
        taken = [row.job_id for batch in batches for row in batch]
        assert len(taken) == len(set(taken)) == 30
    finally:
        for s in stores:
            await s.close()


async def test_the_queue_survives_a_restart(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    await store.add_claim("job-3", 7, '{"x": "y"}', 5)
    await store.close()
    again = open_store(store_url)
    await again.open()
    try:
        [row] = await again.take_claims("new process", 10, LEASE, 10)
        assert (row.job_id, row.chain_id, row.document) == ("job-3", 7, '{"x": "y"}')
    finally:
        await again.close()


async def test_a_paid_jobs_lock_is_kept_once(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.get_escrow_lock("job-4") is None
        assert await store.put_escrow_lock("job-4", '{"lock": 1}', 10)
        assert not await store.put_escrow_lock("job-4", '{"lock": 2}', 20)
        assert await store.get_escrow_lock("job-4") == '{"lock": 1}'
    finally:
        await store.close()


async def test_unclaimed_escrow_locks_are_those_without_a_claim_row(store_url: str) -> None:
    """What the settlement sweep reads: every lock until its job's claim is queued
    (whatever state the claim is in afterwards), oldest first."""
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.unclaimed_escrow_locks() == []
        await store.put_escrow_lock("job-b", '{"b": 1}', 2_000)
        await store.put_escrow_lock("job-a", '{"a": 1}', 1_000)
        await store.put_escrow_lock("job-c", '{"c": 1}', 3_000)
        assert [(r.job_id, r.document, r.created_ms)
                for r in await store.unclaimed_escrow_locks()] == [
            ("job-a", '{"a": 1}', 1_000), ("job-b", '{"b": 1}', 2_000),
            ("job-c", '{"c": 1}', 3_000)]
        await store.add_claim("job-b", 8996, "{}", 4_000)  # pending
        await store.add_claim("job-a", 8996, "{}", 4_000)
        assert len(await store.take_claims("me", 4_000, LEASE, 1, job_id="job-a")) == 1
        assert await store.finish_claim("job-a", "me", "claimed", "0x1", "", 4_001)
        assert [r.job_id for r in await store.unclaimed_escrow_locks()] == ["job-c"]
        await store.add_claim("unlocked", 8996, "{}", 5_000)  # a claim with no lock row
        assert [r.job_id for r in await store.unclaimed_escrow_locks()] == ["job-c"]
    finally:
        await store.close()


async def test_operator_jobs_are_found_by_either_id(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.get_operator_job("t-1") is None
        assert await store.find_operator_jobs([]) == []
        await store.put_operator_job("t-1", "op-1", '{"free": true}')
        await store.put_operator_job("t-2", "op-2", '{"free": false}')
        await store.put_operator_job("t-1", "op-1", '{"free": false}')  # replaced
        row = await store.get_operator_job("t-1")
        assert row is not None
        assert (row.job_id, row.operator_job_id, row.document) == (
            "t-1", "op-1", '{"free": false}')
        found = await store.find_operator_jobs(["op-2", "op-1", "op-x"])
        assert sorted((r.job_id, r.operator_job_id) for r in found) == [
            ("t-1", "op-1"), ("t-2", "op-2")]
    finally:
        await store.close()
