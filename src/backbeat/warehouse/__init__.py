"""The Iceberg warehouse, fed from the lake by batch jobs (``backbeat batch ...``), as in the
system it replaces: each finished hour loaded into staging tables, listens de-duplicated
into a gold table, files compacted, a star schema built, and queried with time travel.
Needs ``backbeat[iceberg]`` (pyiceberg with pyiceberg-core and the SQL catalog).

Next: ``catalog.py`` (the tables), ``load.py``, ``dedup.py``, ``maintain.py``, ``run.py``,
``model.py`` (the star schema), ``reader.py`` (the queries).
"""
