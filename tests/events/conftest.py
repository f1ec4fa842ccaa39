"""The codec's C core as a fixture, where it was built.

``native`` is the C core's codec: where it was not built, the tests that take it fail if it
should have been (a C compiler runs here, or CI) and skip otherwise
(``tests/support/c_build.py``).

Next: ``backbeat.events.codec`` (the interface), ``test_jsonfast.py`` (the two compared).
"""

from __future__ import annotations

import pytest

from backbeat.events import codec as interface
from backbeat.events.codec.c_core import MODULE, NativeCodec
from tests.support import c_build


@pytest.fixture(scope="session")
def native() -> NativeCodec:
    """The codec on the built C core (fails or skips without one, see the module doc)."""
    c_build.require(MODULE, interface.NATIVE_MISSING)
    assert interface.native is not None
    return interface.native
