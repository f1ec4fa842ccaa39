"""How events travel: the source contract, JSONL files, in-process simulator (Kafka later)."""
