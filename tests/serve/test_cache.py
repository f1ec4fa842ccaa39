"""The per-batch cache: one computation per (key, version), stale answers while it runs, and
what it keeps bounded in entries and bytes."""

from __future__ import annotations

import asyncio
import functools

from backbeat.serve.cache import ENTRY_BYTES, Flights


async def _value(value: str, gate: asyncio.Event | None = None) -> str:
    if gate is not None:
        await gate.wait()
    return value


def test_concurrent_askers_share_one_computation() -> None:
    async def scenario() -> tuple[list[str], int]:
        flights: Flights[str] = Flights()
        gate, calls = asyncio.Event(), 0

        async def compute() -> str:
            nonlocal calls
            calls += 1
            return await _value("v1", gate)

        askers = [asyncio.create_task(flights.get("k", 1, compute)) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        return list(await asyncio.gather(*askers)), calls

    values, calls = asyncio.run(scenario())
    assert values == ["v1"] * 5
    assert calls == 1


def test_stale_askers_get_the_previous_version_while_the_new_one_is_computed() -> None:
    async def scenario() -> tuple[str, str, str, str]:
        flights: Flights[str] = Flights()
        await flights.get("k", 1, lambda: _value("v1"), stale=True)
        gate = asyncio.Event()
        first = asyncio.create_task(flights.get("k", 2, lambda: _value("v2", gate), stale=True))
        await asyncio.sleep(0)
        stale = await flights.get("k", 2, lambda: _value("never"), stale=True)
        waiting = asyncio.create_task(flights.get("k", 2, lambda: _value("never")))
        await asyncio.sleep(0)
        gate.set()
        computed = await first
        fresh = await flights.get("k", 2, lambda: _value("never"), stale=True)
        return stale, computed, await waiting, fresh

    assert asyncio.run(scenario()) == ("v1", "v2", "v2", "v2")


def test_stale_without_a_previous_value_waits_and_forget_drops_it() -> None:
    async def scenario() -> tuple[str, str]:
        flights: Flights[str] = Flights()
        gate = asyncio.Event()
        first = asyncio.create_task(flights.get("k", 1, lambda: _value("v1", gate)))
        await asyncio.sleep(0)
        second = asyncio.create_task(flights.get("k", 1, lambda: _value("never"), stale=True))
        await asyncio.sleep(0)
        gate.set()
        await first
        flights.forget("k")
        gate2 = asyncio.Event()
        third = asyncio.create_task(flights.get("k", 2, lambda: _value("v2", gate2)))
        await asyncio.sleep(0)
        fourth = asyncio.create_task(flights.get("k", 2, lambda: _value("never"), stale=True))
        await asyncio.sleep(0)
        gate2.set()
        await third
        return await second, await fourth

    assert asyncio.run(scenario()) == ("v1", "v2")


def test_a_stale_answer_is_never_more_than_one_batch_old() -> None:
    """A key last computed at batch 1 is not served stale at batch 3: askers wait."""

    async def scenario() -> tuple[str, str]:
        flights: Flights[str] = Flights()
        await flights.get("k", 1, lambda: _value("v1"), stale=True)
        await flights.get("other", 2, lambda: _value("o2"), stale=True)  # batch 2 passes by
        gate = asyncio.Event()
        first = asyncio.create_task(flights.get("k", 3, lambda: _value("v3", gate), stale=True))
        await asyncio.sleep(0)
        second = asyncio.create_task(flights.get("k", 3, lambda: _value("never"), stale=True))
        await asyncio.sleep(0)
        gate.set()
        return await first, await second

    assert asyncio.run(scenario()) == ("v3", "v3")


def _fill(flights: Flights[str], values: dict[str, str], version: int = 1) -> None:
    async def scenario() -> None:
        for key, value in values.items():
            await flights.get(key, version, functools.partial(_value, value))

    asyncio.run(scenario())


def _size(key: object, value: str) -> int:
    return len(value)


def test_values_stay_within_the_byte_budget_least_recently_used_out_first() -> None:
    flights: Flights[str] = Flights(max_bytes=4 * (ENTRY_BYTES + 1000), size=_size)
    _fill(flights, {k: k * 1000 for k in "abcd"})
    assert (len(flights), flights.nbytes) == (4, 4 * (ENTRY_BYTES + 1000))
    _fill(flights, {"a": "never"})  # a hit: "a" is now the most recently used
    _fill(flights, {"e": "e" * 1000, "f": "f" * 1000})
    assert flights.nbytes <= 4 * (ENTRY_BYTES + 1000)
    kept = {k for k in "abcdef" if _kept(flights, k)}
    assert kept == {"a", "d", "e", "f"}


class _ComputedError(Exception):
    pass


def _kept(flights: Flights[str], key: str, version: int = 1) -> bool:
    """Is ``key`` answered from memory (asking changes nothing else)?"""

    async def compute() -> str:
        raise _ComputedError

    try:
        asyncio.run(flights.get(key, version, compute))
    except _ComputedError:
        return False
    return True


def test_a_value_over_the_whole_budget_is_answered_but_not_kept() -> None:
    flights: Flights[str] = Flights(max_bytes=10_000, size=_size)
    _fill(flights, {"small": "s" * 100, "huge": "h" * 20_000})
    assert len(flights) == 1
    assert flights.nbytes == ENTRY_BYTES + 100
    assert _kept(flights, "small")


def test_entries_are_bounded_in_number_too() -> None:
    flights: Flights[str] = Flights(max_entries=3)
    _fill(flights, {str(i): str(i) for i in range(10)})
    assert len(flights) == 3
    assert [_kept(flights, k) for k in "6789"] == [False, True, True, True]


def test_a_new_version_drops_what_is_older_than_the_previous_one() -> None:
    flights: Flights[str] = Flights(size=_size)
    _fill(flights, {"a": "a1", "b": "b1"}, version=1)
    _fill(flights, {"a": "a2"}, version=2)  # b1 stays: a stale answer while b2 is computed
    assert (len(flights), flights.nbytes) == (2, 2 * (ENTRY_BYTES + 2))
    _fill(flights, {"c": "c3"}, version=3)  # b1 (batch 1) can no longer be served
    assert (len(flights), flights.nbytes) == (2, 2 * (ENTRY_BYTES + 2))
    assert not _kept(flights, "b", version=3)
