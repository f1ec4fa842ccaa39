"""The per-batch cache: one computation per (key, version), and stale answers while it runs."""

from __future__ import annotations

import asyncio

from backbeat.serve.cache import Flights


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
