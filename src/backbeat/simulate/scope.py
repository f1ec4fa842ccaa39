"""A run's scope: what keeps its ids apart from every other run's in a shared store.

The engine drops an event whose ``eventId`` or (``sessionId``, ``itemInSession``) it has just
seen, so two runs that both number their sessions 1, 2, 3 ... from the same start cancel each
other's events. A scope is a digest of what decides a run's events (the simulator's seed,
users, start, site and catalog: ``Simulator``; a replayed export's identity: the replay's
choice), and gives the run two things:

- a session offset: the run's n-th session (n = 0, 1, ...) is ``sessionId = 1 + (offset + n)
  mod (2**31 - 1)``. Ids stay in [1, 2**31 - 1], the int Streamify's Spark schema reads, and a
  run's sessions fill one contiguous (circular) range, so two runs of n1 and n2 sessions share
  an id only if their ranges overlap: probability (n1 + n2 - 1) / (2**31 - 1) for independent
  offsets (two runs of 25,000 sessions, 10,000 users for a day: 2.3e-5; two of 2.5 M: 2.3e-3).
  At 31 bits nothing placed at random does better: hashing each session id instead collides as
  a birthday problem (n1 * n2 / 2**31 shared ids expected, 0.3 for the two 25,000-session runs).
- a tag, 5 characters (25 more independent bits), in every ``eventId``:
  ``<l|p|a|s>-<tag>-<sessionId, 10 digits>-<itemInSession>`` (``event_ids.py``). Two runs'
  event ids meet only if their tags are equal too (2**-25 times the above).

The digest leaves out what does not change the events (a run's end: a longer run of the same
settings repeats the shorter one's events, and the engine rightly drops them as duplicates).
Same settings, same scope: the same seed still gives byte-identical files.

Next: ``engine.py`` numbers sessions through :meth:`RunScope.session_ids`; ``tables.py`` puts
the tag in the event ids; ``simulator.py`` computes the simulator's scope.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

SESSION_SPACE: Final = 2**31 - 1
"""sessionIds are 1 .. 2**31 - 1: Streamify reads them as a (32-bit) Spark int."""
TAG_LENGTH: Final = 5
_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base 32, lower case


@dataclass(frozen=True, slots=True)
class RunScope:
    """A run's session offset (in ``[0, SESSION_SPACE)``) and event-id tag (build with
    :meth:`of`)."""

    tag: str
    session_offset: int

    @classmethod
    def of(cls, *parts: str | bytes | int) -> RunScope:
        """The scope of the run these parts identify (BLAKE2b of the parts, in order)."""
        digest = hashlib.blake2b(digest_size=16, person=b"backbeat-run")
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            digest.update(len(data).to_bytes(8, "little") + data)
        value = digest.digest()
        offset = int.from_bytes(value[:8], "little") % SESSION_SPACE
        bits = int.from_bytes(value[8:], "little")
        tag = "".join(_ALPHABET[(bits >> (5 * k)) & 31] for k in range(TAG_LENGTH))
        return cls(tag=tag, session_offset=offset)

    def session_ids(self, local: I64) -> I64:
        """The sessionIds of the run's sessions number ``local`` (0, 1, ...; a run has at most
        ``SESSION_SPACE``): a bijection of ``[0, SESSION_SPACE)`` onto ``[1, SESSION_SPACE]``."""
        out: I64 = (local + self.session_offset) % SESSION_SPACE + 1
        return out

    def event_id_prefix(self, letter: str) -> str:
        """The first 8 characters of the run's event ids of a topic: ``<letter>-<tag>-``."""
        return f"{letter}-{self.tag}-"
