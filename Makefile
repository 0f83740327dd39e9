# Vigilo: `make demo` (embedded, SQLite, in-process workers) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/vigilo
TEST_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//

.PHONY: demo test bench install install-dev setup lint services flower worker beat clean

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

setup: install
	$(PY) manage.py vigilo_setup

demo: setup
	@mkdir -p var/reports
	$(PY) manage.py vigilo_run --name demo \
	  --dataset examples/support-agent/dataset.jsonl --profile examples/support-agent/profile.yaml \
	  --json var/reports/demo.json --junit var/reports/demo.xml

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

services:
	scripts/services.sh

test: install-dev services lint
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) VIGILO_EMBEDDED=true $(PY) -m pytest
	VIGILO_EMBEDDED=true $(PY) -m pytest -m embedded -p no:cacheprovider

# Benchmarks (docs/benchmarks.md): all sizes and modes take about 35 minutes (20 of them the peer at 100,000);
# BENCH_ARGS=--quick takes minutes.
BENCH_ARGS ?=
bench: install-dev services
	$(PY) bench/run.py $(BENCH_ARGS)

# Distributed mode, natively (docker/compose.yml runs the same commands).
worker: install
	$(VENV)/bin/celery -A vigilo_project worker -Q executions,outbox,default --concurrency 2 -l info

beat: install
	$(VENV)/bin/celery -A vigilo_project beat -l info

flower: install
	$(VENV)/bin/celery -A vigilo_project flower --port=5555

clean:
	rm -rf var/test var/reports
