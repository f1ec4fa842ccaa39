"""Failed logins per client address: after ``per_minute`` failures within a minute, the
address is refused (429) until the oldest of them is a minute old.

An IPv6 client is counted by its /64 network (one host usually holds a whole /64). The table
is bounded: past ``max_clients`` addresses, the one that failed longest ago is forgotten.
While an address is throttled its credentials are not even checked, so guessing gets no
answer at all; a legitimate user behind the same address waits at most a minute.

Next: ``proxies.py`` (which address a request comes from), ``auth.py`` (who counts).
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time
from collections.abc import Callable

WINDOW_S = 60.0


def client_key(address: str) -> str:
    """The unit a failure is counted for: the address, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Throttle:
    """A sliding one-minute window of failures per client."""

    def __init__(
        self,
        per_minute: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self._max_clients = max_clients
        self._clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        key = client_key(address)
        failures = self._failures.get(key)
        if failures is None:
            return None
        now = self._clock()
        while failures and failures[0] <= now - WINDOW_S:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.per_minute:
            return None
        return max(1, math.ceil(failures[0] + WINDOW_S - now))

    def fail(self, address: str) -> int | None:
        """Count a failure of ``address``; the seconds it must now wait if this one made it
        reach the limit, else None."""
        key = client_key(address)
        failures = self._failures.pop(key, None) or collections.deque(maxlen=self.per_minute)
        failures.append(self._clock())
        self._failures[key] = failures  # the most recent failure last
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
        if len(failures) < self.per_minute:
            return None
        return self.retry_after(address)
