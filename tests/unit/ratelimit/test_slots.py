"""ConcurrencySlots: a cap per client key, refused at once, nothing left behind."""

import pytest

from tidegate.ratelimit.slots import ConcurrencySlots, TooManyProbesError


def test_a_client_holds_at_most_its_slots_and_others_are_not_affected() -> None:
    slots = ConcurrencySlots(2)
    with slots.hold("1.2.3.4"), slots.hold("1.2.3.4"):
        with pytest.raises(TooManyProbesError) as refused, slots.hold("1.2.3.4"):
            pytest.fail("the third slot must not be granted")
        assert (refused.value.status, refused.value.code) == (429, "too_many_probes")
        assert refused.value.headers == {"Retry-After": "1"}
        with slots.hold("5.6.7.8"):
            assert slots.held == 3
        assert slots.held_by("1.2.3.4") == 2
    assert slots.held == 0
    assert slots._held == {}  # no entry kept per client that ever asked


def test_a_failing_block_gives_its_slot_back() -> None:
    slots = ConcurrencySlots(1)
    with pytest.raises(RuntimeError), slots.hold("a"):
        raise RuntimeError("boom")
    with slots.hold("a"):
        assert slots.held_by("a") == 1


def test_zero_is_no_cap() -> None:
    slots = ConcurrencySlots(0)
    held = [slots.hold("a") for _ in range(100)]
    for slot in held:
        slot.__enter__()
    assert slots.held_by("a") == 100
    with pytest.raises(ValueError):
        ConcurrencySlots(-1)
