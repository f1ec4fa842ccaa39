"""The codec implementations as fixtures: the reference, and the C core where it was built.

``native`` is the C core's codec: where it was not built, the tests that take it fail if it
should have been (a C compiler runs here, or CI) and skip otherwise
(``tests/support/c_build.py``). ``codec`` runs a test once on each of ``python`` and ``native``.

Next: ``backbeat.events.codec`` (the interface), ``test_jsonfast.py`` (the two compared).
"""

from __future__ import annotations

import pytest

from backbeat.events import codec as interface
from backbeat.events.codec import Codec
from backbeat.events.codec.c_core import MODULE, NativeCodec
from tests.support import c_build


@pytest.fixture(scope="session")
def native() -> NativeCodec:
    """The codec on the built C core (fails or skips without one, see the module doc)."""
    c_build.require(MODULE, interface.NATIVE_MISSING)
    assert interface.native is not None
    return interface.native


@pytest.fixture(scope="session", params=["python", "native"])
def codec(request: pytest.FixtureRequest) -> Codec:
    """Each implementation of the codec in turn."""
    if request.param == "native":
        found: Codec = request.getfixturevalue("native")
        return found
    return interface.python
