# Vigilo: `make demo` (embedded, SQLite, in-process workers), `make test` (the whole suite) and `make check`
# (lint, types, layer contracts and the tests that need no services: the inner loop, minutes).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/vigilo
TEST_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//

.PHONY: demo test check bench bench-live bench-exports install install-dev phoenix setup lint types services flower worker beat clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Arize Phoenix, for the exporter tests: its own virtualenv (its dependencies are not Vigilo's), pinned.
VENV_PHOENIX := .venv-phoenix
$(VENV_PHOENIX)/.installed: requirements-phoenix.txt
	$(PYTHON) -m venv $(VENV_PHOENIX)
	$(VENV_PHOENIX)/bin/python -m pip install -q -r requirements-phoenix.txt
	touch $@
phoenix: $(VENV_PHOENIX)/.installed

setup: install
	$(PY) manage.py vigilo_setup

# The example is built to fail its gate: vigilo_run's exit 1 is the demo working, so make says so and exits 0.
# Any other code is a real failure (vigilo_run's exit codes: README "Exit codes").
DEMO_REPORTS ?= var/reports
demo: setup
	@mkdir -p $(DEMO_REPORTS)
	@$(PY) manage.py vigilo_run --name demo \
	  --dataset examples/support-agent/dataset.jsonl --profile examples/support-agent/profile.yaml \
	  --json $(DEMO_REPORTS)/demo.json --junit $(DEMO_REPORTS)/demo.xml; code=$$?; \
	if [ $$code -eq 1 ]; then \
	  echo "demo: the gate failed, as this example intends (vigilo_run exited 1; the table above says why)."; \
	  echo "demo: reports in $(DEMO_REPORTS)/demo.json and $(DEMO_REPORTS)/demo.xml"; \
	elif [ $$code -eq 0 ]; then \
	  echo "demo: the gate passed, but this example is built to fail it: something is wrong"; exit 1; \
	else \
	  echo "demo: vigilo_run exited $$code, which is not the example's answer"; exit $$code; \
	fi

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy (strict for gating, the sandbox, outbox and runs; pyproject.toml) and the layer contracts (import-linter).
types: install-dev
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# No PostgreSQL, RabbitMQ or worker processes: the pure gate math, the network policy and HTTP client on
# loopback, and the embedded suite on SQLite.
check: lint types
	VIGILO_EMBEDDED=true $(PY) -m pytest -q -p no:cacheprovider tests/gating tests/vigilo_project
	VIGILO_EMBEDDED=true $(PY) -m pytest -q -m embedded -p no:cacheprovider

services:
	scripts/services.sh

# Debian's chromium for the browser tests (tests/admin/test_browser.py); installed when missing.
.PHONY: browser
browser:
	scripts/browser.sh

test: install-dev phoenix services browser lint types
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) VIGILO_EMBEDDED=true $(PY) -m pytest
	VIGILO_EMBEDDED=true $(PY) -m pytest -m embedded -p no:cacheprovider

# Benchmarks (docs/benchmarks.md): all sizes and modes take about 35 minutes (20 of them the peer at 100,000);
# BENCH_ARGS=--quick takes minutes.
BENCH_ARGS ?=
bench: install-dev services
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/live.py $(BENCH_LIVE_ARGS)
	$(PY) bench/exports.py $(BENCH_EXPORTS_ARGS)

# The live-evaluation benchmark alone (bench/live.py; a few minutes, --quick for one).
BENCH_LIVE_ARGS ?=
bench-live: install-dev services
	$(PY) bench/live.py $(BENCH_LIVE_ARGS)

# The export benchmark alone (bench/exports.py; a few minutes, --skip-run for the relay figures only).
BENCH_EXPORTS_ARGS ?=
bench-exports: install-dev services
	$(PY) bench/exports.py $(BENCH_EXPORTS_ARGS)

# Distributed mode, natively (docker/compose.yml runs the same commands).
worker: install
	$(VENV)/bin/celery -A vigilo_project worker -Q executions,online,exports,outbox,default --concurrency 2 -l info

beat: install
	$(VENV)/bin/celery -A vigilo_project beat -l info

flower: install
	$(VENV)/bin/celery -A vigilo_project flower --port=5555

clean:
	rm -rf var/test var/reports
