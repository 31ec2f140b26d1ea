# A 3-node Runnel cluster as local background processes (issue 6), laid out as in
# deploy/docker-compose.yml: n1, n2, n3 on 127.0.0.1, 127.0.0.2, 127.0.0.3 (loopback
# accepts every 127.x address), each with the same ports:
#   4222 clients, 8222 monitoring, 6222 Raft, 6223 NATS routes.
# Included by the main Makefile (`include deploy/cluster.mk`; it uses its `venv` target):
#   make cluster        start the nodes in the background, wait until they agree on a
#                       leader, print how to reach them (a running node is left alone)
#   make cluster-stop   stop them (SIGTERM, then SIGKILL after CLUSTER_STOP_WAIT s)
# Data under $(CLUSTER_DATA)/n1 ... (kept across restarts: `rm -rf data/n?` wipes it),
# pid and log files under $(CLUSTER_RUN)/. CLUSTER_ROUTES= (empty) starts the nodes
# without the NATS route link; CLUSTER_FLAGS adds flags to every node.

# Wherever this file is included, it must not become the default goal.
_CLUSTER_GOAL := $(.DEFAULT_GOAL)

CLUSTER_PY        ?= .venv/bin/python
CLUSTER_DATA      ?= ./data
CLUSTER_RUN       ?= .cluster
CLUSTER_ROUTES    ?= yes
CLUSTER_FLAGS     ?=
CLUSTER_WAIT      ?= 30
CLUSTER_STOP_WAIT ?= 15
CLUSTER_PEERS     := n1@127.0.0.1:6222,n2@127.0.0.2:6222,n3@127.0.0.3:6222
_CLUSTER_IDS      := 1 2 3

.PHONY: cluster cluster-stop

# $(call _cluster_routes,N): the route flags of node N (the other two as routes).
_cluster_empty :=
_cluster_space := $(_cluster_empty) $(_cluster_empty)
_cluster_comma := ,
_cluster_routes = $(if $(CLUSTER_ROUTES),--cluster nats://127.0.0.$(1):6223 --routes $(subst \
  $(_cluster_space),$(_cluster_comma),$(foreach o,$(filter-out $(1),$(_CLUSTER_IDS)),nats://127.0.0.$(o):6223)))

# Polls every node's /streaming/serverz until all agree on one leader, with a deadline.
define _cluster_wait_py
import json, sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[1])
urls = [f"http://127.0.0.{i}:8222/streaming/serverz" for i in (1, 2, 3)]
def serverz(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return json.loads(r.read())
    except Exception:
        return None
while True:
    got = [serverz(u) for u in urls]
    leaders = {z.get("leader") for z in got if z}
    if all(got) and len(leaders) == 1 and "" not in leaders:
        print(f"cluster ready: leader {leaders.pop()}, term {got[0].get('term')}")
        sys.exit(0)
    if time.monotonic() > deadline:
        print("cluster not ready after", sys.argv[1], "s:",
              [(z.get("node_id"), z.get("role"), z.get("leader")) if z else "no answer" for z in got])
        sys.exit(1)
    time.sleep(0.2)
endef
export _cluster_wait_py

cluster: venv
	@mkdir -p $(CLUSTER_RUN)
	@for i in $(_CLUSTER_IDS); do \
	  pidfile=$(CLUSTER_RUN)/n$$i.pid; \
	  if [ -f $$pidfile ] && kill -0 $$(cat $$pidfile) 2>/dev/null; then \
	    echo "n$$i is already running (pid $$(cat $$pidfile))"; continue; fi; \
	  mkdir -p $(CLUSTER_DATA)/n$$i; \
	  case $$i in \
	    1) routes="$(call _cluster_routes,1)";; \
	    2) routes="$(call _cluster_routes,2)";; \
	    3) routes="$(call _cluster_routes,3)";; \
	  esac; \
	  nohup $(CLUSTER_PY) -m broker -a 127.0.0.$$i -p 4222 -m 8222 -st file \
	    -dir $(CLUSTER_DATA)/n$$i --clustered --cluster_node_id n$$i \
	    --cluster_peers $(CLUSTER_PEERS) $$routes $(CLUSTER_FLAGS) \
	    >> $(CLUSTER_RUN)/n$$i.log 2>&1 < /dev/null & \
	  echo $$! > $$pidfile; \
	  echo "started n$$i (pid $$!) on 127.0.0.$$i, log $(CLUSTER_RUN)/n$$i.log"; \
	done
	@$(CLUSTER_PY) -c "$$_cluster_wait_py" $(CLUSTER_WAIT) || { \
	  for i in $(_CLUSTER_IDS); do echo "--- $(CLUSTER_RUN)/n$$i.log"; tail -n 15 $(CLUSTER_RUN)/n$$i.log; done; \
	  echo "make cluster-stop ends whatever started"; exit 1; }
	@echo ""
	@echo "Clients:     nats://127.0.0.1:4222,nats://127.0.0.2:4222,nats://127.0.0.3:4222 (cluster ID test-cluster)"
	@echo "Monitoring:  http://127.0.0.1:8222/streaming/serverz  (also 127.0.0.2, 127.0.0.3; /streaming/clusterz)"
	@echo "Status:      $(CLUSTER_PY) -m broker status -s http://127.0.0.1:8222 -s http://127.0.0.2:8222 -s http://127.0.0.3:8222"
	@echo "Try:         node tests/js/stan/pub.js --url nats://127.0.0.2:4222 --client p1 --channel foo --count 3"
	@echo "             node tests/js/stan/sub.js --url nats://127.0.0.3:4222 --client s1 --channel foo --start first --count 3"
	@echo "Logs:        $(CLUSTER_RUN)/n1.log ...   data: $(CLUSTER_DATA)/n1 ...   stop: make cluster-stop"

cluster-stop:
	@for i in $(_CLUSTER_IDS); do \
	  pidfile=$(CLUSTER_RUN)/n$$i.pid; \
	  [ -f $$pidfile ] || continue; \
	  pid=$$(cat $$pidfile); \
	  if kill -0 $$pid 2>/dev/null; then kill -TERM $$pid && echo "stopping n$$i (pid $$pid)"; fi; \
	done
	@for i in $(_CLUSTER_IDS); do \
	  pidfile=$(CLUSTER_RUN)/n$$i.pid; \
	  [ -f $$pidfile ] || continue; \
	  pid=$$(cat $$pidfile); waited=0; \
	  while kill -0 $$pid 2>/dev/null && [ $$waited -lt $$(( $(CLUSTER_STOP_WAIT) * 10 )) ]; do \
	    sleep 0.1; waited=$$((waited + 1)); done; \
	  if kill -0 $$pid 2>/dev/null; then kill -KILL $$pid; echo "n$$i (pid $$pid) ignored SIGTERM: killed"; fi; \
	  rm -f $$pidfile; \
	done
	@echo "cluster stopped (data kept under $(CLUSTER_DATA)/n1 ...)"

.DEFAULT_GOAL := $(_CLUSTER_GOAL)
