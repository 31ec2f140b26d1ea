# chaos/chaos.mk — included by the top Makefile (`include chaos/chaos.mk`).
#
#   make chaos                 the scenario set (~10 min), writes chaos/REPORT.md
#   make chaos CHAOS_ARGS='--scale 0.5'      shorter faults
#   make chaos-one SCENARIO=kill-leader SEED=3 DURATION=40
#
# Partitions need root, iproute2 and iptables; power cuts need /dev/fuse, libfuse2 and
# fusepy. Scenarios whose needs are missing are reported as SKIPPED.

CHAOS_ARGS ?=
SCENARIO   ?= kill-leader
SEED       ?= 1
DURATION   ?= 40

.PHONY: chaos chaos-one chaos-deps

chaos: $(STAMP) chaos-deps
	$(PY) -m chaos --all $(CHAOS_ARGS)

chaos-one: $(STAMP) chaos-deps
	$(PY) -m chaos --scenario $(SCENARIO) --seed $(SEED) --duration $(DURATION) $(CHAOS_ARGS)

chaos-deps: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
	  command -v iptables >/dev/null || { apt-get update -qq && apt-get install -y -qq iptables; }; \
	  ldconfig -p | grep -q 'libfuse.so.2' || { apt-get update -qq && apt-get install -y -qq libfuse2; }; \
	fi
	@$(PY) -c 'import fuse' 2>/dev/null || $(PIP) install -q 'fusepy>=3.0.1' || true
