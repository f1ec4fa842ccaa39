"""What the SQL stores share: the named queries' answers, written once over the same tables
(``m_<metric>``, ``listens``, ``dead_letters``, ``meta_*``), with the few spellings that
differ between DuckDB and PostgreSQL in a :class:`~backbeat.sinks.sql.dialect.Dialect`."""
