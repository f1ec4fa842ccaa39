"""The embedded store (DuckDB): ``store.py`` writes, ``reader.py`` answers, ``schema.py`` keeps
the tables and their migrations."""
