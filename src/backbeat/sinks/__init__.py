"""Where results land: the store contract, DuckDB, the CSV file (more sinks later)."""
