"""The namespaces of chaos.netns: nodes reach each other on 127.77.0.x across the
bridge, a block drops one direction only, heal restores it. Skipped without root."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chaos.netns import Topology, available

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "-")

SERVER = ("import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
          "socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 5599)); s.listen(8); s.settimeout(20)\n"
          "while True:\n c, _ = s.accept(); c.sendall(b'hi'); c.close()")
CLIENT = ("import socket,sys\ntry:\n s=socket.create_connection((sys.argv[1], 5599), timeout=1);"
          " print(s.recv(2).decode())\nexcept OSError: print('blocked')")


@pytest.fixture
def topo():
    t = Topology(f"t{os.getpid() % 0xFFF:03x}", 2)
    t.destroy()
    t.create()
    yield t
    t.destroy()


def reach(topo: Topology, src: str, dst: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", topo.ns(src), sys.executable, "-c", CLIENT,
                          topo.host(dst)], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def test_block_and_heal(topo):
    server = subprocess.Popen(["ip", "netns", "exec", topo.ns("2"), sys.executable, "-c",
                               SERVER, topo.host("2")])
    try:
        for _ in range(50):
            if reach(topo, "c", "2") == "hi":
                break
        assert reach(topo, "c", "2") == "hi"
        assert reach(topo, "1", "2") == "hi"
        topo.block("2", "1")
        assert reach(topo, "1", "2") == "blocked"
        assert reach(topo, "c", "2") == "hi"  # clients are never cut off
        topo.heal()
        assert reach(topo, "1", "2") == "hi"
    finally:
        server.kill()
        server.wait()


def test_loopback_of_a_namespace_is_its_own(topo):
    # 127.77.0.x is not local inside a node's namespace: it goes out through eth0
    routes = topo.exec("1", "ip", "route", "get", topo.host("2"))
    assert "dev eth0" in routes
