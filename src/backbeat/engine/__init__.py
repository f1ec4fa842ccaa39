"""The micro-batch engine: decode, validate, event time, dedup, aggregate, commit."""
