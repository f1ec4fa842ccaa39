"""Types of the producer's C loop (``_c/produce.c``): the signature of its Python twin,
``produce_loop._produce_each``, which states the contract."""

from backbeat.transport.kafka.produce_loop import _produce_each

produce_each = _produce_each
