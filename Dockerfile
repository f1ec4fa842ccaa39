# syntax=docker/dockerfile:1
# backbeat's container image (BuildKit: Docker 23+ builds with it by default).
#
#   docker build --target runtime -t backbeat .          # the default target (the last stage)
#   docker build --target spark -t backbeat-spark .      # + Java 17 and PySpark: --engine spark
#
#   docker run --rm -v backbeat-data:/data backbeat simulate --out events --users 1000
#   docker run --rm -v backbeat-data:/data backbeat stream --input events
#   docker run --rm -v backbeat-data:/data -p 127.0.0.1:8000:8000 backbeat serve --host 0.0.0.0
#
# Stages: `build` compiles the backbeat wheel with its C cores and a wheel for every locked
# dependency (uv.lock, through `uv export`); `base` installs those wheels, and nothing else,
# into a clean Python (no compiler); `spark` adds a headless JRE 17 and the `spark` extra;
# `runtime` is `base` as it is. Every backbeat process runs as `backbeat` (uid/gid 10001) in
# /data. The HEALTHCHECK asks the API's /health (`backbeat health`); a role without the API
# sets BACKBEAT_HEALTH_URL (stream: http://127.0.0.1:9108/metrics) or disables it (produce,
# batch). docs/deploy.md describes the roles, variables and volumes.

# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS build

# Debian's security updates replace exact package versions in bookworm, so an `=version` pin
# would break the build at the next update: the base image's tag is the pin (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

# The same uv as the Makefile (UV_VERSION) and the same build as tests/deploy/test_wheel.py.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PYTHON_PREFERENCE=only-system \
    UV_NO_CACHE=1

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./

# The locked dependencies (--locked: a uv.lock out of date with pyproject.toml stops the build)
# as requirement lists: with hashes to download (each file checked against uv.lock), without
# to install (a wheel built here from an sdist, such as pyspark's, has a hash of its own).
# `base` installs the EXTRAS, `spark` those and SPARK_EXTRAS. The lists of extras are split
# into words on purpose, one --extra flag each (SC2086).
ARG EXTRAS="kafka postgres mongo iceberg recommend"
ARG SPARK_EXTRAS="spark"
# hadolint ignore=SC2086
RUN set -eu; \
    flags=""; for extra in ${EXTRAS}; do flags="${flags} --extra ${extra}"; done; \
    spark="${flags}"; for extra in ${SPARK_EXTRAS}; do spark="${spark} --extra ${extra}"; done; \
    mkdir -p /wheels; \
    uv export --locked --no-dev --no-emit-project ${spark} -o /wheels/locked.txt; \
    uv export --locked --no-dev --no-emit-project --no-hashes ${flags} -o /wheels/runtime.txt; \
    uv export --locked --no-dev --no-emit-project --no-hashes ${spark} -o /wheels/spark.txt; \
    pip wheel --no-cache-dir --require-hashes --no-deps --wheel-dir /wheels -r /wheels/locked.txt

# backbeat itself, with its C cores: the build fails here rather than ship the Python paths.
COPY src ./src
RUN uv build --wheel --out-dir /wheels/app . \
    && python -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
cores = [n for n in names if n.endswith('.so')]; \
assert len(cores) == 2, f'expected the 2 C cores, found {cores}'; print(*cores)" \
        /wheels/app/backbeat-*.whl

# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS base

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="backbeat" \
      org.opencontainers.image.description="Real-time analytics for a music streaming service: simulate, stream, aggregate in event time, land and serve." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Only wheels, from the build stage's folder mounted for this step (no copy stays in a layer),
# no index: the image holds exactly what uv.lock says, and `pip check` proves it consistent.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r /wheels/runtime.txt \
    && pip install --no-index --no-deps /wheels/app/backbeat-*.whl \
    && pip check \
    && groupadd --system --gid 10001 backbeat \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin backbeat \
    && mkdir /data \
    && chown backbeat:backbeat /data

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001

# 8000: the API and dashboard (serve, demo, stream --serve); 9108: stream's Prometheus metrics.
EXPOSE 8000 9108
# `backbeat health` waits 3 s for the answer; starting the CLI takes about 2 s more.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["backbeat", "health"]

ENTRYPOINT ["backbeat"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
FROM base AS spark

LABEL org.opencontainers.image.title="backbeat-spark" \
      org.opencontainers.image.description="backbeat with Java 17 and PySpark: backbeat stream --engine spark, spark-submit."

USER 0:0
# A headless JRE only (no X11 libraries, no recommends); Debian's versions move with security
# updates, so the bookworm base is the pin (DL3008). The man directory is what the JRE's
# post-install script writes its alternatives' pages to; slim images drop it.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f /usr/bin/java)")")" /opt/java

# JAVA_HOME: /opt/java, a link to the JRE of this machine's architecture (amd64 or arm64).
# SPARK_HOME: pyspark's package folder, which holds Spark's jars and its scripts (pip also puts
# spark-submit and pyspark on the PATH, in /usr/local/bin).
ENV JAVA_HOME=/opt/java \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark
ENV PATH="${JAVA_HOME}/bin:${PATH}"

# The spark extra (pyspark, pandas) on top of what `base` holds, from the same locked wheels.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r /wheels/spark.txt \
    && pip check \
    && test -d "${SPARK_HOME}/jars" \
    && command -v spark-submit \
    && java -version

USER 10001:10001

# ---------------------------------------------------------------------------------------------
# The default target (`docker build .`): the last stage.
FROM base AS runtime
