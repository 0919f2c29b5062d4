# Quick start: `make demo` (serve the demo app) and `make test` (every check).
# Both set up what they need: a virtualenv, npm's pinned Pyodide, the Pyodide wheels.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
HOST     ?= 127.0.0.1
PORT     ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup setup-python protocol setup-web chromium demo test test-js test-unit test-browser lint clean torture bench dist example

setup: setup-python protocol setup-web

setup-python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# web/durably/protocol-definition.js: the page's copy of the protocol, generated from
# the Python side (src/durably/browser/protocol.py); committed, because the npm package
# and `durably bundle` ship web/durably as is.
protocol: setup-python
	$(PY) scripts/gen_protocol.py

setup-web: setup-python protocol
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install -y nodejs npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	$(PY) scripts/setup_web.py

chromium:
	@test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; }

demo: setup
	$(PY) -m durably serve --host $(HOST) --port $(PORT)

LINTED := src tests scripts playwright.config.py $(wildcard bench)

lint: setup-python
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
	$(PY) -m mypy

# The client, the protocol and the worker's request handling, with stubbed Worker,
# MessageChannel and Web Locks: Node's own test runner, no dependency, no browser.
test-js:
	node --test tests/js/

# The PostgreSQL scenarios and worker-process tests use $$DURABLY_TEST_POSTGRES_URL, else a
# server on 127.0.0.1:5432, else a throwaway cluster (tests/unit/pg_server.py).
test-unit: setup-python
	$(PY) -m pytest tests/unit tests/postgres

# The npm package durably-pyodide (dist/durably-pyodide-<version>.tgz), rebuilt when a
# source it packs changes.
NPM_VERSION  := $(shell sed -n 's/^  "version": "\(.*\)",/\1/p' package.json)
NPM_TARBALL  := dist/durably-pyodide-$(NPM_VERSION).tgz
DIST_SOURCES := $(shell find web/durably npm src/durably requirements -type f -not -name '*.pyc') \
	package.json package-lock.json pyproject.toml scripts/build_npm.py scripts/setup_web.py

# The Python wheel (dist/durably-<version>-py3-none-any.whl): the CPython runtime and
# `python -m durably bundle`, installed with pip.
PY_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PY_WHEEL   := dist/durably-$(PY_VERSION)-py3-none-any.whl

dist: $(NPM_TARBALL) $(PY_WHEEL)

$(NPM_TARBALL): $(DIST_SOURCES) | setup
	cd scripts && ../$(PY) build_npm.py

$(PY_WHEEL): $(DIST_SOURCES) | setup
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation . -w dist

# The Vite example, installed from the tarball (--no-save keeps its committed lock file
# as is) and built; the browser tests serve examples/vite-app/dist.
EXAMPLE         := examples/vite-app
EXAMPLE_SOURCES := $(shell find $(EXAMPLE) -type f -not -path '*/node_modules/*' -not -path '*/dist/*')

example: $(EXAMPLE)/dist/.built

$(EXAMPLE)/dist/.built: $(NPM_TARBALL) $(EXAMPLE_SOURCES)
	cd $(EXAMPLE) && npm install --no-save --no-audit --no-fund --loglevel=error ../../$(NPM_TARBALL)
	cd $(EXAMPLE) && npx vite build --logLevel warn
	touch $@

# Two workers: booting Pyodide dominates and overlaps well with the other worker's waits.
test-browser: setup chromium example
	$(PY) -m pytest tests/browser -n 2

test: lint test-js test-unit test-browser

# Crash torture: TORTURE_N random interruptions of the owner tab (SEED=n to replay a
# run). `make test` runs a quick version (tests/browser/test_reliability_torture.py).
TORTURE_N ?= 50
torture: setup chromium
	$(PY) tests/browser/torture.py -n $(TORTURE_N) $(if $(SEED),--seed $(SEED))

# Benchmarks: prints one JSON document and writes bench/results/latest.json.
# QUICK=1 runs small sizes (checks that every benchmark works; its figures mean little).
bench: setup chromium
	$(PY) -m bench $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) node_modules web/vendor build dist $(EXAMPLE)/node_modules $(EXAMPLE)/dist .pytest_cache .mypy_cache .ruff_cache
