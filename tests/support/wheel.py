"""The backbeat wheel, built from a copy of this checkout's sources with ``uv build`` (the
build backend in ``pyproject.toml``), as users and the container image get it.

:func:`build_wheel` builds one into a folder of the caller's; :func:`shared_wheel` builds the
default one (C cores included where a compiler runs) once per test session, for every test
that only reads it (``tests/deploy/test_wheel.py``, ``tests/deploy/test_image.py``).

Next: ``tests/deploy/test_wheel.py``, the ``Dockerfile`` (its ``build`` stage runs the same).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SHARED: dict[str, Path] = {}


def uv() -> str:
    """The uv to build with: on the PATH, else ``.tools/bin/uv`` (``make install``); skips the
    test when there is none."""
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed (make install puts it in .tools/)")
    return found


def build_wheel(workdir: Path, env: dict[str, str]) -> Path:
    """A wheel built in ``workdir`` from a copy of the sources (none of the checkout's built
    modules), with ``env`` added to the environment (``{"CC": "false"}``: no compiler).

    Fails the test, with the end of uv's output, when the build fails.
    """
    source, out = workdir / "source", workdir / "dist"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    junk = shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=junk)
    done = subprocess.run(
        [uv(), "build", "--wheel", "--out-dir", str(out), str(source)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("backbeat-*.whl")
    return wheel


def shared_wheel(factory: pytest.TempPathFactory) -> Path:
    """The default wheel (this environment's compiler, if any), built once per session.

    Read it, never change it: other tests get the same file.
    """
    if "default" not in _SHARED:
        _SHARED["default"] = build_wheel(factory.mktemp("wheel"), {})
    return _SHARED["default"]
