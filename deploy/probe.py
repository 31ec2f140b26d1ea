#!/usr/bin/env python3
"""runnel-probe: the container's health and readiness checks, with the standard library only
(slim images have no curl).

    runnel-probe live  [URL] [--wait SECONDS]
        /healthz answers 200: the process serves (Docker HEALTHCHECK, Kubernetes liveness
        and startup probes)
    runnel-probe ready [URL] [--wait SECONDS]
        live, and a clustered node knows a Raft leader, so the requests of a client
        connected to it can be committed (Kubernetes readiness: the client Service sends
        clients only to ready pods)

URL is the node's monitoring endpoint, default $RUNNEL_MONITOR_URL or http://127.0.0.1:8222.
--wait retries until the check passes or SECONDS have passed (default: one try).
Exit status 0 when the check passes, 1 when it fails (with the reason on stderr), 2 on usage.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8222"
TIMEOUT_S = 2.0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def live(base: str) -> str | None:
    """None when /healthz answers 200, else why not."""
    try:
        status, body = _get(base + "/healthz")
    except (OSError, ValueError) as exc:
        return f"{base}/healthz: {exc}"
    if status != 200:
        return f"{base}/healthz: HTTP {status} {body[:200].decode(errors='replace')}"
    return None


def ready(base: str) -> str | None:
    """None when live and, if clustered, a leader is known; else why not."""
    problem = live(base)
    if problem:
        return problem
    try:
        status, body = _get(base + "/streaming/serverz")
        serverz = json.loads(body) if status == 200 else None
    except (OSError, ValueError) as exc:
        return f"{base}/streaming/serverz: {exc}"
    if not isinstance(serverz, dict):
        return f"{base}/streaming/serverz: HTTP {status}"
    if serverz.get("state") != "CLUSTERED":
        return None
    if serverz.get("role") in ("Leader", "Follower") and serverz.get("leader"):
        return None
    return (f"node {serverz.get('node_id', '?')} knows no leader "
            f"(role {serverz.get('role', '?')}): its cluster has no quorum yet")


def main(argv: list[str]) -> int:
    args, wait_s = list(argv), 0.0
    if "--wait" in args:
        at = args.index("--wait")
        try:
            wait_s = float(args[at + 1])
        except (IndexError, ValueError):
            wait_s = -1.0
        del args[at:at + 2]
    if not args or args[0] not in ("live", "ready") or len(args) > 2 or wait_s < 0:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    base = (args[1] if len(args) > 1 else
            os.environ.get("RUNNEL_MONITOR_URL") or DEFAULT_URL).rstrip("/")
    check = live if args[0] == "live" else ready
    deadline = time.monotonic() + wait_s
    while True:
        problem = check(base)
        if problem is None or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if problem:
        print(f"runnel-probe {args[0]}: {problem}", file=sys.stderr)
        return 1
    print(f"runnel-probe {args[0]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
