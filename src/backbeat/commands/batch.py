"""``backbeat batch ...``: the jobs run on a schedule over the lake and the warehouse (cron, a
Kubernetes CronJob, or ``batch run --every 1h``), each idempotent: run twice, same result.

Next: ``backbeat.sinks.lake.compact`` (``compact-lake``), ``backbeat.warehouse`` (the rest).
"""

from __future__ import annotations

import typer

batch_app = typer.Typer(
    help="Batch jobs over the lake and the Iceberg warehouse (idempotent; for cron).",
    no_args_is_help=True,
)
