"""GCRA buckets and their sharing through each backend (SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from tidegate.api.ratelimit import retry_after
from tidegate.ratelimit.backends import PostgresState, RedisState, SqliteState
from tidegate.ratelimit.buckets import UNKNOWN, Bucket, Limiter, SharedState
from tidegate.settings import ClassLimit

REDIS_URL = "redis://127.0.0.1:6379/15"
S = 1_000_000  # one second in µs
T0 = 1_800_000_000 * S


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def local(rate: float, burst: int) -> Bucket:
    return Bucket("read", "address", ClassLimit(rate, burst), lambda: None)


def test_a_burst_passes_then_one_per_interval() -> None:
    bucket = local(2.0, 10)
    assert [bucket.take("a", T0) for _ in range(10)] == [0] * 10
    wait = bucket.take("a", T0)
    assert wait == S // 2
    assert retry_after(wait) == 1
    assert bucket.take("b", T0) == 0  # another key has its own bucket
    assert bucket.take("a", T0 + S // 2 - 1) == 1
    assert bucket.take("a", T0 + S // 2) == 0
    assert bucket.take("a", T0 + S // 2) > 0
    # After burst / rate seconds of quiet the whole burst is back.
    assert [bucket.take("a", T0 + 6 * S) for _ in range(10)] == [0] * 10
    assert bucket.take("a", T0 + 6 * S) > 0


@pytest.mark.parametrize(("rate", "burst"), [(5.0, 120), (3.0, 7), (20.0, 120), (0.01, 5)])
def test_exactly_the_burst_passes_at_one_instant(rate: float, burst: int) -> None:
    bucket = local(rate, burst)
    outcomes = [bucket.take("a", T0) for _ in range(burst + 5)]
    assert outcomes[:burst] == [0] * burst and all(w > 0 for w in outcomes[burst:])


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(1) == 1
    assert retry_after(S) == 1
    assert retry_after(S + 1) == 2
    bucket = local(0.1, 1)
    assert bucket.take("a", T0) == 0
    assert retry_after(bucket.take("a", T0)) == 10


def test_refused_requests_do_not_drain_the_bucket() -> None:
    bucket = local(1.0, 2)
    for _ in range(2):
        assert bucket.take("a", T0) == 0
    for _ in range(100):
        assert bucket.take("a", T0 + S // 2) > 0
    assert bucket.take("a", T0 + S) == 0


def test_a_key_shared_but_unknown_must_be_fetched_first() -> None:
    bucket = local(1.0, 2)
    bucket.shared = True
    assert bucket.take("a", T0) == UNKNOWN
    bucket.apply("a", 0)
    assert bucket.take("a", T0) == 0


def test_prune_forgets_full_buckets_only() -> None:
    bucket = local(1.0, 5)
    bucket.take("old", T0)
    bucket.take("busy", T0 + 10 * S)
    bucket.snapshot(T0 + 10 * S)
    bucket.prune(T0 + 10 * S)
    assert set(bucket.tat) == {"busy"}


class Memory:
    """The merge contract, in memory (a reference for the real backends)."""

    name = "memory"

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.fail = False

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def merge(self, rows: Sequence[tuple[str, int, int]]) -> list[int]:
        if self.fail:
            raise ConnectionError("down")
        out = []
        for key, step, tat in rows:
            stored = self.values.get(key)
            value = tat if stored is None else max(stored + step, tat)
            self.values[key] = value
            out.append(value)
        return out


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend_spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "ratelimit.db")
    if request.param == "postgres":
        return "postgres", str(request.getfixturevalue("pg_url"))
    return "redis", REDIS_URL


@pytest.fixture
async def backend(backend_spec: tuple[str, str]) -> AsyncIterator[SharedState]:
    kind, where = backend_spec
    state: SharedState = (SqliteState(Path(where)) if kind == "sqlite"
                          else PostgresState(where) if kind == "postgres" else RedisState(where))
    await state.open()
    try:
        if kind == "redis":
            try:
                await state.merge([("probe:" + secrets.token_hex(4), 0, 0)])
            except OSError as exc:
                pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {exc}")
        yield state
    finally:
        await state.close()


async def test_backend_merge_is_max_of_stored_plus_step_and_tat(backend: SharedState) -> None:
    now = T0 + secrets.randbelow(S)
    a, b = "test:" + secrets.token_hex(8), "test:" + secrets.token_hex(8)
    assert await backend.merge(sorted([(a, 100, now + 100), (b, 5, now + 5)])) == \
        [v for _k, v in sorted([(a, now + 100), (b, now + 5)])]
    # Another worker's count adds to what is stored ...
    assert await backend.merge([(a, 30, now + 30)]) == [now + 130]
    # ... and a worker whose own view is further ahead wins.
    assert await backend.merge([(a, 10, now + 10_000)]) == [now + 10_000]
    # A pure read (step 0) returns the stored value.
    assert await backend.merge([(a, 0, 0)]) == [now + 10_000]


async def decide(limiter: Limiter, bucket: Bucket, key: str) -> int:
    """What the door does: fetch an unknown key, then decide."""
    wait = bucket.take(key, limiter.clock())
    if wait == UNKNOWN:
        await limiter.fetch(bucket, key)
        wait = bucket.take(key, limiter.clock())
    return wait


async def test_two_workers_share_one_limit(backend: SharedState) -> None:
    clock = Clock()
    limits = {"read": ClassLimit(0.01, 5)}
    first, second = (Limiter(limits, clock=clock) for _ in range(2))
    first.start(backend)
    second.start(backend)
    try:
        key = "10.9." + ".".join(str(secrets.randbelow(250)) for _ in range(2))
        one, two = first.bucket("read", "address"), second.bucket("read", "address")
        assert one is not None and two is not None
        assert [await decide(first, one, key) for _ in range(3)] == [0] * 3
        await first.flush()
        # The second worker fetches the key before its first decision: 2 of 5 are left.
        assert two.take(key, clock()) == UNKNOWN
        decisions = [await decide(second, two, key) for _ in range(4)]
        assert decisions[:2] == [0, 0] and all(d > 0 for d in decisions[2:])
        await second.flush()
        await first.flush()
        assert await decide(first, one, key) > 0  # the first sees the second's requests
    finally:
        await first.stop()
        await second.stop()


async def test_a_failing_backend_fails_open_to_local_limits() -> None:
    clock = Clock()
    memory = Memory()
    memory.fail = True
    limiter = Limiter({"read": ClassLimit(0.01, 3)}, clock=clock)
    outcomes: list[bool] = []

    class Stats:
        def synced(self, ok: bool) -> None:
            outcomes.append(ok)

    limiter.start(memory, Stats())
    try:
        bucket = limiter.bucket("read", "address")
        assert bucket is not None
        assert bucket.take("k", clock()) == UNKNOWN
        await limiter.fetch(bucket, "k")  # the batch fails: decided locally, no long wait
        assert outcomes == [False]
        assert [bucket.take("k", clock()) for _ in range(3)] == [0] * 3
        assert bucket.take("k", clock()) > 0  # still limited, by this worker alone
        assert bucket.take("new", clock()) == 0  # not shared: no fetch while it is down
        memory.fail = False
        await limiter.sync(memory)
        assert bucket.shared is True
    finally:
        await limiter.stop()
