"""Types of the producer's C parts (``_c/produce.c``, ``_c/native.c``): see ``clients.py``."""

from collections.abc import Callable

from backbeat.transport.kafka.clients import Column

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

class NativeProducer:
    def __init__(self, config: dict[str, str]) -> None: ...
    def produce(
        self,
        topic: str,
        values: Column,
        keys: Column,
        header: str,
        header_values: Column,
        start: int,
        stop: int,
    ) -> tuple[int, int]: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...
    def take(
        self,
    ) -> tuple[list[tuple[int, str, int]], list[tuple[int, str, bool]], str | None, int]: ...
    def __len__(self) -> int: ...
