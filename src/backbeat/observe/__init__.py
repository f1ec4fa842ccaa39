"""Watching a running backbeat: Prometheus metrics (``metrics.py``, served by ``exporter.py``)
and log lines as JSON (``logs.py``).

Next: ``metrics.py``.
"""
