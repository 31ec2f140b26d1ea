# The 3-node cluster of deploy/docker-compose.yml (see deploy/README.md).
# Included by the main Makefile (`include deploy/deploy.mk`):
#   make compose-up     build the image, start n1 n2 n3, wait until they are healthy
#   make compose-down   stop and remove the containers; the volumes (the data) are kept
# Both need a Docker engine and say so clearly when none answers.

# Wherever this file is included, it must not become the default goal.
_DEPLOY_GOAL := $(.DEFAULT_GOAL)

DOCKER       ?= docker
COMPOSE_FILE ?= deploy/docker-compose.yml
COMPOSE      := $(DOCKER) compose -f $(COMPOSE_FILE)

.PHONY: compose-up compose-down

# `docker info` answers only when an engine runs (the CLI alone is not enough).
define _deploy_need_engine
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "$@: no Docker engine answers ('$(DOCKER) info' failed)." >&2; \
	  echo "$@: start one (or set DOCKER_HOST to one), then run 'make $@' again." >&2; \
	  exit 1; }
endef

compose-up:
	$(_deploy_need_engine)
	$(COMPOSE) up -d --build --wait

compose-down:
	$(_deploy_need_engine)
	$(COMPOSE) down

.DEFAULT_GOAL := $(_DEPLOY_GOAL)
