"""When a missing C core fails the tests that need it, and when it only skips them.

The C cores are optional builds: a machine without a C compiler gets the Python paths, and
the tests that compare the two skip there, saying why. Where the core could have been built
(a C compiler runs here: ``$CC`` if set, else ``cc`` or ``gcc``) or in CI (``CI`` set), a
missing core is a broken build, not a reason to test less: :func:`require` fails, saying how
to build it.

Next: ``tests/events/conftest.py`` (the codec's core), ``tests/events/test_jsonfast.py``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from functools import cache

import pytest

HOW_TO_BUILD = (
    "build it with `make install` (uv builds the C sources with the package); the build is "
    "optional and goes on without a core that does not compile: "
    "`.tools/bin/uv sync --locked --reinstall-package backbeat -v` shows the compiler's errors"
)


@cache
def compiler() -> str | None:
    """The C compiler a build here would use, if it runs: ``$CC`` when set (``CC=false``
    means none), else ``cc`` or ``gcc`` on the PATH."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc"]
    for command in candidates:
        argv = shlex.split(command)
        path = shutil.which(argv[0]) if argv else None
        if path is None:
            continue
        try:
            ran = subprocess.run(
                [path, *argv[1:], "--version"], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ran.returncode == 0:
            return command
    return None


def expected() -> str | None:
    """Why the C cores must be built here (CI, or a compiler that runs), or None."""
    if os.environ.get("CI"):
        return "CI is set"
    found = compiler()
    return f"a C compiler runs here (`{found}`)" if found else None


def require(module: str, missing: str | None) -> None:
    """For a test that needs the C core ``module``: return if it was built (``missing`` is
    None), else fail where a build was expected (:func:`expected`), skip elsewhere.

    Args:
        module: the core's import name, for the message.
        missing: why it is not there (its import error), or None when it is.
    """
    if missing is None:
        return
    why = expected()
    if why is None:
        pytest.skip(f"{module} is not built and no C compiler runs here to build it: {missing}")
    pytest.fail(
        f"{module} is not built, but {why}, so it must be: {missing}. To fix, {HOW_TO_BUILD}.",
        pytrace=False,
    )
