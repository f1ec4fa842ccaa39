"""The C cores under AddressSanitizer and UBSan, fed broken records (``fuzz_codec.py``).

The codec's core reads untrusted bytes from Kafka and the producer's loop reads rows by the
offsets it is handed, so an out-of-bounds read, a use after free or undefined behaviour must
not hide behind a test that happens to pass: this builds the same sources with the
sanitizers into a temporary folder, loads them in a child process in place of the installed
modules, and fuzzes them for a while (the codec's core against the reference, see
``fuzz_codec.py``). Any finding aborts the child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = {
    "backbeat.events._jsonfast": ROOT / "src" / "backbeat" / "events" / "_c",
    "backbeat.transport.kafka._produce": ROOT / "src" / "backbeat" / "transport" / "kafka" / "_c",
}
CHILD = """
import importlib.util, sys
seconds, *paths = sys.argv[1:]
for name, path in zip(NAMES, paths):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
from backbeat.events.codec.c_core import NativeCodec
from backbeat.transport.kafka import produce_loop
assert produce_loop.produce_each is sys.modules[NAMES[1]].produce_each, "not the sanitized loop"
from tests.events.fuzz_codec import run
print("fuzz batches:", run(float(seconds), NativeCodec(sys.modules[NAMES[0]])))
""".replace("NAMES", repr(list(MODULES)))


def _runtime(gcc: str, name: str) -> str | None:
    path = subprocess.run(
        [gcc, f"-print-file-name={name}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.slow
def test_the_core_survives_broken_input_under_sanitizers(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc: the sanitized build of the C core needs it")
    runtimes = [_runtime(gcc, "libasan.so"), _runtime(gcc, "libubsan.so")]
    if None in runtimes:
        pytest.skip("gcc has no AddressSanitizer/UBSan runtime here")
    built = []
    for name, folder in MODULES.items():
        module = tmp_path / f"{name.rsplit('.', 1)[1]}{sysconfig.get_config_var('EXT_SUFFIX')}"
        subprocess.run(
            [gcc, "-O1", "-g", "-std=c11", "-fsanitize=address,undefined",
             "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-fPIC", "-shared",
             f"-I{sysconfig.get_paths()['include']}", *map(str, sorted(folder.glob("*.c"))),
             "-o", str(module)],
            check=True,
        )  # fmt: skip
        built.append(str(module))
    env = {
        **os.environ,
        "LD_PRELOAD": ":".join(str(r) for r in runtimes),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "PYTHONPATH": str(ROOT),
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD, "20", *built],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-4000:]
    assert "fuzz batches:" in child.stdout
    assert int(child.stdout.split("fuzz batches:")[1]) > 100
