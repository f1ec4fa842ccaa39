"""Types of the producer's C loop (``_c/produce.c``): see ``produce_loop.py``."""

from collections.abc import Callable

from backbeat.transport.kafka.produce_loop import Column

def produce_each(
    produce: Callable[..., None],
    topic: str,
    values: Column,
    keys: Column,
    header: str,
    header_values: Column,
    start: int,
    stop: int,
) -> tuple[int, BaseException | None]: ...
