"""The Parquet lake: raw events by topic and event hour (``--sink lake --lake URL``), read by
the warehouse's hourly load and merged by ``backbeat batch compact-lake``.

Next: ``layout.py`` (folders and file names), ``sink.py`` (the writer), ``compact.py``.
"""
