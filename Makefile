# Grantly. `make demo` runs it; `make test` runs every test. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
CHROMIUM := /usr/bin/chromium
# The PostgreSQL this kind of machine runs (trust auth); each test gets a database of its own.
TEST_POSTGRESQL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test lint browser-deps npm-deps screenshots bench-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Debian's Chromium for the Playwright browser tests (never `playwright install`).
browser-deps:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# panva's oauth4webapi for tests/interop/test_oauth4webapi.py, exactly as package-lock.json pins
# it (`npm ci`); again only when the lock file changes.
OAUTH4WEBAPI := tests/interop/oauth4webapi
NPM_STAMP := $(OAUTH4WEBAPI)/node_modules/.installed

$(NPM_STAMP): $(OAUTH4WEBAPI)/package.json $(OAUTH4WEBAPI)/package-lock.json
	cd $(OAUTH4WEBAPI) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

npm-deps: $(NPM_STAMP)

demo: install
	GRANTLY_ENV=development GRANTLY_LOG_FORMAT=console $(BIN)/grantly demo

lint: install
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite twice: on SQLite (the embedded default), then on PostgreSQL.
test: install browser-deps npm-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	GRANTLY_TEST_DATABASE=$(TEST_POSTGRESQL) $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Every page at 1280 px and 375 px, photographed by the browser test that checks their layout.
screenshots: install browser-deps
	GRANTLY_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_every_page.py

# Benchmarks (not part of `make test`): Debian's wrk, the `bench` extra, then bench/run.py.
# BENCH_ARGS="--quick" for a smoke run, "--with-peer" to add node oidc-provider; BENCHMARKS.md.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell sha1sum pyproject.toml | cut -c1-12)

bench-deps: install
	@command -v wrk >/dev/null || { \
	  echo "installing Debian's wrk for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@test -f $(BENCH_STAMP) || { \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]' && \
	  rm -f $(VENV)/.bench-installed-* && touch $(BENCH_STAMP); }

bench: install bench-deps
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info test-artifacts .pytest_cache .mypy_cache .ruff_cache \
	  $(OAUTH4WEBAPI)/node_modules
