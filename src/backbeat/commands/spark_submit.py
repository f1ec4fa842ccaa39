"""``spark-submit``'s entry point: ``backbeat stream --engine spark`` as a cluster application.

    spark-submit --master yarn --deploy-mode client \\
        "$(python -m backbeat.commands.spark_submit --path)" \\
        --bootstrap-servers broker:9092 --store /data/backbeat --checkpoint hdfs:///backbeat/ckpt

The arguments after the file are ``backbeat stream``'s; the master and Spark settings come
from ``spark-submit`` (``docs/spark.md`` has the commands for standalone, YARN and Kubernetes).

Next: ``backbeat.engine.spark.session`` (which takes the session spark-submit made).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run ``backbeat stream --engine spark`` with ``argv`` (default: the command line)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--path"]:
        print(__file__)
        return
    from backbeat.commands import main as backbeat

    sys.argv = ["backbeat", "stream", "--engine", "spark", *args]
    backbeat()


if __name__ == "__main__":
    main()
