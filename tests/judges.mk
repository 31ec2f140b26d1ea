# Judges of STAN compatibility: the official clients that tests/stan drives.
# Included by the main Makefile (`include tests/judges.mk`); `make judges`
# installs all of them, idempotently, on a fresh clone:
#   - stan.py (asyncio-nats-streaming) in its own venv, $(STANPY_VENV): its
#     `nats` package (asyncio-nats-client 0.11.x) would clash with nats-py in $(VENV);
#   - node-nats-streaming (+ minimist for its examples): tests/js/package.json,
#     installed by the main Makefile's $(JS_STAMP) rule;
#   - the C judge, built against Debian's libnats (streaming API) into $(BUILD_DIR);
#     libnats-dev is installed with apt-get only when its header is missing.

# Wherever this file is included, it must not become the default goal.
_JUDGES_GOAL  := $(.DEFAULT_GOAL)

PYTHON        ?= python3
VENV          ?= .venv
JS_DIR        ?= tests/js
JS_STAMP      ?= $(JS_DIR)/node_modules/.installed
BUILD_DIR     ?= build
CC            ?= cc

STANPY_VENV   := .venv-stanpy
STANPY_PY     := $(STANPY_VENV)/bin/python
STANPY_STAMP  := $(STANPY_VENV)/.installed
STANPY_REQS   := tests/stanpy/requirements.txt
LIBNATS_H     := /usr/include/nats/nats.h
STAN_C_JUDGE  := $(BUILD_DIR)/stan_judge
STAN_C_SRC    := tests/c/stan_judge.c
# root needs no sudo (the project's machines run as root)
SUDO          ?= $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: judges judges-stanpy judges-c judges-js test-stan

judges: judges-stanpy judges-c judges-js
judges-stanpy: $(STANPY_STAMP)
judges-c: $(STAN_C_JUDGE)
judges-js: $(JS_STAMP)

$(STANPY_STAMP): $(STANPY_REQS)
	test -x $(STANPY_PY) || $(PYTHON) -m venv $(STANPY_VENV)
	$(STANPY_PY) -m pip install -q --upgrade pip
	$(STANPY_PY) -m pip install -q -r $(STANPY_REQS)
	PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python $(STANPY_PY) -c 'import nats.aio.client, stan.aio.client'
	touch $@

# Only when the header is missing: try the install, refresh the lists if that fails.
$(LIBNATS_H):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libnats-dev \
	  || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libnats-dev)
	test -f $@

$(STAN_C_JUDGE): $(STAN_C_SRC) | $(LIBNATS_H)
	mkdir -p $(BUILD_DIR)
	$(CC) -O1 -Wall -Wextra -DNATS_HAS_STREAMING -o $@ $< -lnats -lpthread

# Only the STAN judges' tests (the main `test` target runs them with the rest).
test-stan: judges
	$(VENV)/bin/python -m pytest tests/stan $(PYTEST_ARGS)

.DEFAULT_GOAL := $(_JUDGES_GOAL)
