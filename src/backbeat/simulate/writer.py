"""Write a simulated run to a directory: one NDJSON file per topic, ``<topic>.jsonl``.

Lines are encoded by the contract's codec (``backbeat.events.codec.encode_table``), so a file
written here decodes back to the same tables. Files are created for every topic, even empty
ones, and appended to batch by batch (constant memory for long runs).

Next: ``backbeat.events.codec`` (the encoding) and the CLI's ``simulate`` command.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from backbeat.errors import SourceError
from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimBatch


def write_run(batches: Iterable[SimBatch], directory: str | Path) -> dict[Topic, int]:
    """Append every batch's tables to ``directory/<topic>.jsonl``; return rows per topic.

    Existing files are replaced.

    Raises:
        SourceError: the directory cannot be created or written.
    """
    out = Path(directory)
    counts = dict.fromkeys(Topic, 0)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            files = {t: stack.enter_context((out / f"{t.value}.jsonl").open("wb")) for t in Topic}
            for batch in batches:
                for topic, table in batch.tables.items():
                    if table.num_rows:
                        files[topic].write(encode_table(topic, table))
                        counts[topic] += table.num_rows
    except OSError as exc:
        raise SourceError(f"{out}: cannot write the simulated run: {exc}") from exc
    return counts
