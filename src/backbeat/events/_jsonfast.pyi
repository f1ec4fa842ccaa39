"""Types of the C core (sources in ``_c/``): see its docstrings and ``codec/c_core.py``."""

Buffer = object

class Block:
    """Read-only bytes owned by the C core (buffer protocol)."""

Column = tuple[Block | None, Block, Block | None, int]

def parse(
    payloads: list[bytes], names: tuple[bytes, ...], kinds: str, max_bytes: int
) -> tuple[int, list[int], list[Column]]: ...
def encode(
    keys: tuple[bytes, ...],
    kinds: str,
    columns: list[tuple[Buffer | None, Buffer, Buffer | None, int]],
    n: int,
    packed: bool,
) -> bytes | Block | None: ...
def int_keys(columns: list[tuple[bytes, Buffer | None, Buffer, int]], n: int) -> Block: ...
