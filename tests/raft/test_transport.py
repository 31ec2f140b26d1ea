"""The lean transport: big messages, and what a stranger can send."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket

import msgpack


async def test_large_commands_replicate_byte_for_byte(kit, tmp_path):
    group, machines = await kit.cluster(tmp_path)
    leader = await kit.leader_of(group)
    follower = next(n for n in group if n is not leader)
    big = [os.urandom(3 << 20), os.urandom(5 << 20)]
    results = await asyncio.gather(leader.propose(big[0], timeout=30),
                                   follower.propose(big[1], timeout=30))
    last = max(index for _, index in results)
    await asyncio.gather(*(n.wait_applied(last, timeout=30) for n in group))
    for m in machines:
        assert sorted(m.commands(), key=len) == big


def _stranger(port: int, payload: bytes) -> bytes:
    """Connect, send, and return what the node answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                data = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


STRANGERS = {
    "dict": msgpack.packb({"type": "append_entries"}),  # not a member's address first
    "utility": msgpack.packb(["status"]),               # pysyncobj's admin utility
    "readonly": msgpack.packb("readonly"),              # read-only nodes are not served
    "unknown-member": msgpack.packb("127.0.0.1:1"),
    "pickle": pickle.dumps({"type": "request_vote"}),   # pickle is never unpickled
    "garbage": b"\xc1" * 64,                            # invalid msgpack
}


async def test_strangers_are_disconnected_and_the_group_goes_on(kit, tmp_path):
    group, _ = await kit.cluster(tmp_path)
    leader = await kit.leader_of(group)
    for target in group:
        port = int(target.config.self_address.rsplit(":", 1)[1])
        for name, payload in STRANGERS.items():
            answer = await asyncio.to_thread(_stranger, port, payload)
            assert answer == b"", name
    await leader.propose(b"still-fine", timeout=5)
    assert all(n.status().leader == leader.config.self_address for n in group)
