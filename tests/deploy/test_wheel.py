"""The wheel users install: built from this checkout, with and without a C compiler.

The C cores (``events/_c/``, ``transport/kafka/_c/``) are optional extension modules: a
machine without a compiler must still get a working package, on the Python paths. Each test
builds a wheel with ``uv build`` (``tests/support/wheel.py``; the one with the C cores is shared
with ``test_image.py``), checks what is inside, and imports the package from the unpacked wheel
(dependencies from this environment) to encode, decode and queue a few events.

Next: ``pyproject.toml`` (``[[tool.setuptools.ext-modules]]``), ``test_compose.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.wheel import build_wheel, shared_wheel

pytestmark = pytest.mark.slow

CORES = ("backbeat/events/_jsonfast", "backbeat/transport/kafka/_produce")
DATA = (
    "backbeat/py.typed",
    "backbeat/events/_jsonfast.pyi",
    "backbeat/transport/kafka/_produce.pyi",
    "backbeat/serve/web/index.html",
)
PROBE = """
import numpy as np
from backbeat.events import codec
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.transport.kafka import produce_loop, producer
from datetime import UTC, datetime
run = SimulatorSettings(users=50, seed=3, start=datetime(2026, 1, 5, tzinfo=UTC),
                        end=datetime(2026, 1, 5, 2, tzinfo=UTC))
table = Simulator(run).run()[Topic.LISTEN]
arrays = producer.records(Topic.LISTEN, table)
values = arrays[0].to_pylist()
decoded = codec.decode_batch(Topic.LISTEN, values, np.arange(len(values), dtype=np.int64))
assert decoded.table.num_rows == table.num_rows > 0 and not decoded.dead
assert codec.encode_array(Topic.LISTEN, decoded.table).to_pylist() == values
assert codec.default is (codec.python if codec.native is None else codec.native)
calls = []
specs = [produce_loop.column(a) for a in arrays]
at, error = produce_loop.produce_each(lambda *a, **k: calls.append(bytes(a[1])), "t", specs[0],
                                      specs[1], "eventId", specs[2], 0, len(values))
assert (at, error, calls) == (len(values), None, values)
try:
    from backbeat.transport.kafka._produce import produce_each as c_loop
except ImportError:  # no C loop in this wheel
    c_loop = None
print(codec.native is not None, produce_loop.produce_each is c_loop)
"""


def _probe(wheel: Path, tmp_path: Path) -> str:
    """Import backbeat from the unpacked wheel (not the checkout) and run PROBE."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import backbeat; assert backbeat.__file__.startswith({str(site)!r})\n" + PROBE,
        ],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_the_wheel_carries_the_c_cores_and_uses_them(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler here")
    wheel = shared_wheel(tmp_path_factory)
    names = _names(wheel)
    for core in CORES:
        assert any(n.startswith(core) and n.endswith(".so") for n in names), core
    assert set(DATA) <= set(names)
    assert _probe(wheel, tmp_path) == "True True"


def test_without_a_compiler_the_wheel_still_builds_and_runs_the_python_paths(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path, {"CC": "false"})
    names = _names(wheel)
    assert not [n for n in names if n.endswith(".so")]
    assert set(DATA) <= set(names)
    assert _probe(wheel, tmp_path) == "False False"
