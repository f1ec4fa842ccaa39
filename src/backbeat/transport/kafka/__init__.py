"""Kafka transport: typed settings, topic admin, the simulator's producer, the engine's source,
the dead-letter producer and the watch that logs a broker that stops answering. Everything
here needs the ``kafka`` extra (confluent-kafka); callers check with
:func:`settings.require_client` before importing the other modules.

Next: ``settings.py``, then ``source.py`` (what the engine reads) and ``producer.py``.
"""
