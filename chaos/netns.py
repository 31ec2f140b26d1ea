"""Nodes on their own addresses, as in containers: one network namespace per node and
one for the clients (the supervisor runs there), joined by veth pairs on a bridge.

Addresses stay in the loopback range (127.77.0.0/24) so no traffic can leave the
machine: each namespace's ``lo`` keeps only 127.0.0.1/32 (so 127.77.0.x is not local),
``route_localnet`` lets 127.x cross ``eth0``, and neighbours are static (the kernel does
not answer ARP for loopback-range addresses): every veth gets a fixed MAC.

Partitions are iptables rules in the receiving node's namespace:
``block(dst, src)`` drops every packet from ``src`` arriving at ``dst``.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass

SUBNET = "127.77.0"
CLIENT_HOST = f"{SUBNET}.2"
ENV_KEY = "CHAOS_NETNS"


def _sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Topology:
    tag: str
    n: int

    @property
    def bridge(self) -> str:
        return f"rcb{self.tag}"

    def ns(self, who: str) -> str:
        """``who``: "c" for the clients, "1".."n" for nodes."""
        return f"rc{self.tag}-{who}"

    def host(self, who: str) -> str:
        return CLIENT_HOST if who == "c" else f"{SUBNET}.{10 + int(who)}"

    def mac(self, who: str) -> str:
        return f"02:77:00:00:00:{2 if who == 'c' else 10 + int(who):02x}"

    def members(self) -> list[str]:
        return ["c"] + [str(i) for i in range(1, self.n + 1)]

    def node_hosts(self) -> list[str]:
        return [self.host(str(i)) for i in range(1, self.n + 1)]

    def node_wraps(self) -> list[list[str]]:
        return [["ip", "netns", "exec", self.ns(str(i))] for i in range(1, self.n + 1)]

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "Topology | None":
        raw = os.environ.get(ENV_KEY)
        return cls(**json.loads(raw)) if raw else None

    # -- building and removing --
    def create(self) -> None:
        _sh("ip", "link", "add", self.bridge, "type", "bridge")
        _sh("ip", "link", "set", self.bridge, "up")
        for who in self.members():
            self._member(who)
        for who in self.members():
            for other in self.members():
                if other != who:
                    self.exec(who, "ip", "neigh", "replace", self.host(other), "lladdr",
                              self.mac(other), "dev", "eth0", "nud", "permanent")

    def _member(self, who: str) -> None:
        ns, veth = self.ns(who), f"rcv{self.tag}{who}"
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _sh("ip", "link", "set", veth, "master", self.bridge, "up")
        script = (f"ip link set lo up; ip addr del 127.0.0.1/8 dev lo; "
                  f"ip addr add 127.0.0.1/32 dev lo; "
                  f"sysctl -qw net.ipv4.conf.all.route_localnet=1; "
                  f"sysctl -qw net.ipv4.conf.eth0.route_localnet=1; "
                  f"ip link set eth0 address {self.mac(who)}; ip link set eth0 up; "
                  f"ip addr add {self.host(who)}/24 dev eth0")
        self.exec(who, "sh", "-c", script)

    def destroy(self) -> None:
        for who in self.members():
            _sh("ip", "netns", "del", self.ns(who), check=False)
        _sh("ip", "link", "del", self.bridge, check=False)

    def exec(self, who: str, *argv: str) -> str:
        return _sh("ip", "netns", "exec", self.ns(who), *argv)

    # -- partitions --
    def block(self, dst: str, src: str) -> None:
        """Drop everything ``src`` sends to ``dst`` (node numbers as strings)."""
        self.exec(dst, "iptables", "-A", "INPUT", "-s", self.host(src), "-j", "DROP")

    def heal(self) -> None:
        for who in self.members()[1:]:
            self.exec(who, "iptables", "-F", "INPUT")


def available() -> str:
    """Why namespaces cannot be used here ("" when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"{tool} missing"
    return ""
