"""Is the cluster answering? librdkafka's statistics and errors turned into log lines.

librdkafka rides out a broker that stops answering on its own (a request waits up to
``socket.timeout.ms``, 60 s; an idempotent producer retries a record for up to
``message.timeout.ms``, 5 min, without duplicating it), and says nothing meanwhile: a paused
or unreachable broker is silent to the application. :class:`BrokerWatch` plugs into a
client's configuration (``stats_cb`` every second and ``error_cb``) and logs one WARNING when a
broker has left requests unanswered for ``stall_s`` seconds (or the client reports a transport
error), and one INFO with the outage's length when a broker answers again. It never changes
what the client does. The callbacks run inside the client's ``poll`` / ``consume`` /
``flush``, on the caller's thread.

Next: ``producer.py``, ``source.py``, ``dead_letters.py`` (the clients that carry one).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

log = logging.getLogger(__name__)

STALL_S = 5.0
"""A broker that leaves requests unanswered this long counts as unreachable."""
STATS_INTERVAL_MS = 1000


class BrokerWatch:
    """Watches one client's brokers; :meth:`config` gives the callbacks to install."""

    def __init__(
        self,
        client: str,
        servers: str,
        stall_s: float = STALL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``client`` names the client in log lines ("producer", "consumer", ...)."""
        self._client = client
        self._servers = servers
        self._stall_s = stall_s
        self._clock = clock
        self._rx: dict[str, int] = {}
        self._answered: dict[str, float] = {}  # broker -> when it last answered or owed nothing
        self._down_since: float | None = None
        self._reached = False  # a broker has answered at least once
        self.outages = 0

    def config(self) -> dict[str, Any]:
        """librdkafka settings that install the watch (a user's own keys may override them)."""
        return {
            "statistics.interval.ms": str(STATS_INTERVAL_MS),
            "stats_cb": self.on_stats,
            "error_cb": self.on_error,
        }

    @property
    def unreachable_s(self) -> float | None:
        """Seconds since the cluster last answered, while it is unreachable; else None."""
        return None if self._down_since is None else self._clock() - self._down_since

    def on_stats(self, raw: str) -> None:
        """``stats_cb``: a broker whose response count stands still while requests wait is
        stalled; any broker answering again ends the outage. Silence is measured on the
        statistics' own clock (``ts``), so snapshots served late in a burst (the caller was
        busy) do not look like silence."""
        stats = json.loads(raw)
        now = stats["ts"] / 1e6 if "ts" in stats else self._clock()
        brokers: dict[str, dict[str, Any]] = stats.get("brokers", {})
        stalled: list[tuple[str, float, int]] = []
        answered = False
        for name, broker in brokers.items():
            if broker.get("source") == "logical":  # an alias of a real broker (coordinator)
                continue
            rx = int(broker.get("rx", 0))
            self._reached = self._reached or rx > 0
            waiting = int(broker.get("waitresp_cnt", 0)) + int(broker.get("outbuf_cnt", 0))
            moved = name in self._rx and rx != self._rx[name]
            answered = answered or moved
            self._rx[name] = rx
            if moved or not waiting or name not in self._answered:
                self._answered[name] = now
            silent = now - self._answered[name]
            if waiting and silent >= self._stall_s:
                stalled.append((name, silent, waiting))
        if stalled and self._down_since is None:
            name, silent, waiting = max(stalled, key=lambda s: s[1])
            self._went_down(
                silent,
                f"broker {name} has not answered for {silent:.0f}s ({waiting} requests waiting)",
            )
        elif not stalled and answered and self._down_since is not None:
            log.info(
                "Kafka at %s answers the %s again after %.1fs unreachable",
                self._servers, self._client, self._clock() - self._down_since,
            )  # fmt: skip
            self._down_since = None

    def on_error(self, err: KafkaError) -> None:
        """``error_cb``: the client's own errors (transport, all brokers down, timeouts).
        Before any broker has answered they are left to the caller (a cluster never reached
        is the command's one-line error, not an outage)."""
        if err.fatal():
            log.error("Kafka %s failed: %s", self._client, err.str())
        elif self._reached and self._down_since is None:
            self._went_down(0.0, err.str())
        else:
            log.debug("Kafka %s: %s", self._client, err.str())

    def _went_down(self, silent_s: float, why: str) -> None:
        self._down_since = self._clock() - silent_s
        self.outages += 1
        log.warning(
            "Kafka at %s is not answering the %s: %s; it keeps retrying",
            self._servers, self._client, why,
        )  # fmt: skip
