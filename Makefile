# backbeat: two commands on a fresh machine (Python 3.11 + make):
#   make demo   install everything (locked) and run the live demo on the embedded engine
#   make test   install everything (locked) and run lint, types and the whole test suite
# Nothing is installed by hand: uv comes from PyPI into .tools/, dependencies from uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_PREFERENCE := only-system

.PHONY: demo test test-fast lint bench install clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --locked --quiet

demo: install
	$(UV) run backbeat demo $(ARGS)

lint: install
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks
	$(UV) run mypy

test: lint
	$(UV) run pytest -m "" -p no:cacheprovider $(ARGS)

test-fast: install
	$(UV) run pytest $(ARGS)

bench: install
	$(UV) run python benchmarks/bench_embedded.py $(ARGS)
	$(UV) run python benchmarks/bench_simulate.py

clean:
	rm -rf $(TOOLS) .venv backbeat-data
