"""Topics a stream was asked to read that do not exist yet: awaited, not an error.

A fresh cluster may lack a topic ``stream`` reads: ``produce`` creates the topics it writes,
but another producer may not, and a topic appears only once written. The source
(``source.py``, fixed partitions) then reads the topics that exist and :class:`AwaitedTopics`
says once, at WARNING, what it waits for and looks for the others in the cluster's metadata
about once a second (:meth:`AwaitedTopics.appeared`); a topic that appears joins the
assignment. A bounded run (``--until-end``) does not wait: it reads a missing topic as empty,
and says so. A consumer group needs none of this: its subscription takes a topic in when it
appears.

Next: ``source.py`` (the caller).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin._metadata import ClusterMetadata

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


def existing(meta: ClusterMetadata, topics: Sequence[str]) -> dict[str, list[int]]:
    """The partition numbers of each of ``topics`` the cluster has (without errors)."""
    found = {}
    for name in topics:
        topic = meta.topics.get(name)
        if topic is not None and topic.error is None and topic.partitions:
            found[name] = sorted(topic.partitions)
    return found


class AwaitedTopics:
    """The topics a source still waits for (they join its assignment as they appear)."""

    def __init__(self, missing: Sequence[str], *, wait: bool) -> None:
        """Logs what is missing and what happens about it (``wait``: awaited, else read as
        empty: then nothing is awaited)."""
        self.missing = list(missing) if wait else []
        one = len(missing) == 1
        named = f"topic {missing[0]} does not" if one else f"topics {', '.join(missing)} do not"
        if wait:
            log.warning(
                "%s exist yet: waiting for %s to be created", named, "it" if one else "them"
            )
        else:
            log.warning("%s exist: read as empty (a bounded run does not wait)", named)
        self._next_check = time.monotonic() + CHECK_EVERY_S

    def appeared(self, consumer: Consumer, timeout_s: float) -> dict[str, list[int]]:
        """The partitions of awaited topics that exist now (each returned once); looks at
        most once per ``CHECK_EVERY_S``. A metadata request that fails is retried later."""
        now = time.monotonic()
        if not self.missing or now < self._next_check:
            return {}
        self._next_check = now + CHECK_EVERY_S
        try:
            found = existing(consumer.list_topics(timeout=timeout_s), self.missing)
        except KafkaException as exc:
            log.debug("looking for %s: %s", ", ".join(self.missing), exc.args[0].str())
            return {}
        self.missing = [name for name in self.missing if name not in found]
        for name, parts in found.items():
            log.warning("topic %s appeared: reading its %d partitions", name, len(parts))
        return found
