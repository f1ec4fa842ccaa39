"""Types of the producer's C loop (source in ``_c/produce.c``): see ``producer.py``."""

from collections.abc import Callable

from backbeat.transport.kafka.producer import Column

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
