"""The few SQL spellings that differ between the SQL stores, so every answer is written once.

Everything else the answers use is standard SQL both DuckDB and PostgreSQL run the same way:
``FILTER``, ``strpos``, ``split_part``, ``percentile_cont(ARRAY[...]) WITHIN GROUP``,
``extract(epoch FROM ...)``, ``INTERVAL '10 seconds'``, ``::FLOAT8``, positional ``GROUP BY``.
Integer division truncates in both (``//`` in DuckDB, ``/`` on integers in PostgreSQL).

Next: ``answers.py`` (the queries written with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one SQL engine spells integer division, a timestamp from epoch ms, the first
    bytes of a binary value, and a value at the row of a group's greatest key."""

    name: str
    div_op: str
    """The integer division operator."""
    timestamp_ms: str
    """A naive UTC timestamp from epoch ms: a format string with one ``{}``."""
    head_bytes: str
    """The first ``n`` bytes of a binary value: a format string with ``{value}`` and ``{n}``."""
    arg_max: str
    """An aggregate: the column ``{value}`` at the row of the greatest ``{keys}`` (a
    comma-separated tuple; ``{keys_desc}``: each key ``DESC``), nulls kept; it may take it from
    ``{row}``, a struct of all the columns asked for at once (one aggregate for them all)."""

    def div(self, a: str, b: int) -> str:
        """``a`` divided by ``b``, truncated (both integers)."""
        return f"({a} {self.div_op} {b})"

    def floor(self, a: str, b: int) -> str:
        """``a`` rounded down to a multiple of ``b`` (``a`` not negative)."""
        return f"({a} {self.div_op} {b} * {b})"

    def timestamp(self, ms: str) -> str:
        """A naive UTC timestamp of the epoch-ms expression ``ms``."""
        return self.timestamp_ms.format(ms)

    def head(self, value: str, n: int) -> str:
        """The first ``n`` bytes of the binary expression ``value``."""
        return self.head_bytes.format(value=value, n=n)

    def latest(self, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
        """Select-list items ``<aggregate> AS <column>``: each of ``columns`` at the group's
        row of the greatest ``keys`` (compared in order), null when that row's value is."""
        row = "{" + ", ".join(f"'{name}': {name}" for name in columns) + "}"
        desc = ", ".join(f"{key} DESC" for key in keys)
        return ", ".join(
            self.arg_max.format(value=name, row=row, keys=", ".join(keys), keys_desc=desc)
            + f" AS {name}"
            for name in columns
        )


DUCKDB: Final = Dialect(
    name="duckdb",
    div_op="//",
    timestamp_ms="make_timestamp(({}) * 1000)",
    head_bytes="{value}[1:{n}]",
    arg_max="(arg_max_null({row}, ({keys}))).{value}",  # one aggregate: DuckDB shares it
)
POSTGRES: Final = Dialect(
    name="postgresql",
    div_op="/",
    timestamp_ms="(TIMESTAMP 'epoch' + ({}) * INTERVAL '1 millisecond')",
    head_bytes="substring({value} FROM 1 FOR {n})",
    arg_max="(array_agg({value} ORDER BY {keys_desc}))[1]",
)
