# Runnel: the two commands a newcomer needs are `make run` and `make test`.
# Everything they need is installed on first use (.venv, npm modules, Debian packages).

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
STAMP       := $(VENV)/.installed
JS_DIR      := tests/js
JS_STAMP    := $(JS_DIR)/node_modules/.installed
DATA_DIR    ?= ./data
PORT        ?= 4222
HTTP_PORT   ?= 8222
PYTEST_ARGS ?=

.PHONY: run test bench venv js clean help

include tests/judges.mk
include deploy/deploy.mk
include deploy/cluster.mk
include chaos/chaos.mk

help:
	@echo "make run    - one Runnel node on 127.0.0.1:$(PORT) (monitoring :$(HTTP_PORT)), data under $(DATA_DIR)"
	@echo "make test   - install what is needed and run the whole test suite"
	@echo "make bench  - throughput of Runnel beside nats-server, same load generator"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

js: $(JS_STAMP)

$(JS_STAMP): $(JS_DIR)/package.json
	cd $(JS_DIR) && npm install --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)
	mkdir -p $(DATA_DIR)
	$(VENV)/bin/runnel serve -a 127.0.0.1 -p $(PORT) -m $(HTTP_PORT) -st file -dir $(DATA_DIR)

test: $(STAMP) judges chaos-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m tests.bench.core_bench
	$(PY) -m tests.bench.stan_bench
	$(PY) -m tests.bench.cluster_bench
	$(PY) -m tests.bench.tool_bench

clean:
	rm -rf $(VENV) .venv-stanpy build $(JS_DIR)/node_modules .pytest_cache .hypothesis
