#!/bin/sh
# The container's entrypoint (tini is PID 1 and forwards signals to it).
#
#   <flags...>             exec `runnel serve <flags...>`: the node replaces this shell, so
#                          SIGTERM from `docker stop` / Kubernetes reaches it directly
#                          (it stops gracefully and exits 143, as nats-streaming-server)
#   <command> [args...]    anything that is not a flag runs as is: `runnel status ...`, `sh`
#
#   RUNNEL_CHECK_CONFIG=1  add --check-config: validate the flags and the configuration,
#                          print "configuration OK" (status 0) or the error (status 2), exit
set -eu

case "${1:-}" in
    -*|"") ;;
    *) exec "$@" ;;
esac

if [ "${RUNNEL_CHECK_CONFIG:-0}" = 1 ]; then
    set -- "$@" --check-config
fi
exec runnel serve "$@"
