"""Types of the producer's C loop (source in ``_c/produce.c``): see ``producer.py``."""

from collections.abc import Callable

def produce_each(
    produce: Callable[..., None],
    topic: str,
    values: list[bytes],
    keys: list[bytes],
    header: str,
    header_values: list[bytes],
    start: int,
    stop: int,
) -> tuple[int, BaseException | None]: ...
