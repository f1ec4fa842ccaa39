"""Analytics written once: partial aggregates per micro-batch (see ``metrics.py``)."""
