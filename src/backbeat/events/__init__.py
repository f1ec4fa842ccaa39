"""The event contract: topics, typed schemas, JSON codec and validation.

Start with ``schema.py`` (the fields and rules), then ``codec/`` (bytes <-> Arrow).
"""

from backbeat.events.codec import DeadLetter, Decoded, decode_batch, encode_records, encode_table
from backbeat.events.schema import SCHEMA_VERSION, TOPICS, Topic, arrow_schema, parse_topic

__all__ = [
    "SCHEMA_VERSION",
    "TOPICS",
    "DeadLetter",
    "Decoded",
    "Topic",
    "arrow_schema",
    "decode_batch",
    "encode_records",
    "encode_table",
    "parse_topic",
]
