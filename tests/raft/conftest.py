"""Fixtures for raft/ tests: a toy state machine, free loopback ports, and a
factory that starts RaftNodes and stops every one at the end of the test."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Callable

import msgpack
import pytest

from raft import RaftConfig, RaftNode
from raft.snapshot import SnapshotReader


class Machine:
    """A deterministic toy state machine with idempotent apply: it stores its
    last applied index with its state and skips entries at or below it."""

    def __init__(self) -> None:
        self.last_index = 0
        self.log: list[tuple[int, bytes]] = []
        self.seen: list[int] = []  # every index apply was called with
        self.skipped: list[int] = []
        self.apply_thread: set[str] = set()
        self.fail_on: bytes | None = None

    def apply(self, index: int, command: bytes):
        self.apply_thread.add(threading.current_thread().name)
        self.seen.append(index)
        if command == self.fail_on:
            raise RuntimeError("boom")
        if index <= self.last_index:
            self.skipped.append(index)
            return ("skipped", index)
        self.last_index = index
        self.log.append((index, command))
        return ("applied", index)

    def commands(self) -> list[bytes]:
        return [c for _, c in self.log]

    def take_snapshot(self, index: int) -> bytes:
        assert index == self.last_index or index > self.last_index  # NO_OPs do not reach apply
        return msgpack.packb([self.last_index, self.log], use_bin_type=True)

    def restore(self, reader: SnapshotReader) -> None:
        last, log = msgpack.unpackb(reader.read_bytes(), raw=False)
        if last > self.last_index:
            self.last_index = last
            self.log = [tuple(x) for x in log]


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def wait_until(probe: Callable[[], object], timeout: float, what: str) -> object:
    """Poll an observable condition until true, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class Fatal:
    """on_fatal for tests: record instead of exiting the process."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def __call__(self, exc: BaseException) -> None:
        self.errors.append(exc)


@pytest.fixture
def kit() -> "Kit":
    """Everything a raft test needs (test files import nothing from here)."""
    factory = Kit()
    yield factory
    factory.close()


class Kit:
    Machine = Machine
    Fatal = Fatal

    def __init__(self) -> None:
        self.started: list[RaftNode] = []

    ports = staticmethod(free_ports)
    wait_until = staticmethod(wait_until)

    def config(self, tmp_path, name: str = "n0", **options) -> RaftConfig:
        (port,) = free_ports(1)
        return RaftConfig(self_address=f"127.0.0.1:{port}", data_dir=str(tmp_path / name), **options)

    async def start(self, config: RaftConfig, machine: Machine, snapshots: bool = False,
                    fatal: Fatal | None = None, **kwargs) -> RaftNode:
        node = RaftNode(config, machine.apply,
                        take_snapshot=machine.take_snapshot if snapshots else None,
                        restore_snapshot=machine.restore if snapshots else None,
                        on_fatal=fatal or Fatal(), **kwargs)
        await node.start()
        self.started.append(node)
        return node

    async def cluster(self, tmp_path, count: int = 3, snapshots: bool = False, fs_per_node=None,
                      **options) -> tuple[list[RaftNode], list[Machine]]:
        ports = free_ports(count)
        addresses = [f"127.0.0.1:{p}" for p in ports]
        machines = [Machine() for _ in addresses]
        started = []
        for i, (address, machine) in enumerate(zip(addresses, machines)):
            if fs_per_node is not None:
                options["fs"] = fs_per_node[i]
            config = RaftConfig(self_address=address, data_dir=str(tmp_path / address.replace(":", "_")),
                                peers=tuple(a for a in addresses if a != address), **options)
            started.append(self.start(config, machine, snapshots=snapshots))
        return list(await asyncio.gather(*started)), machines

    def close(self) -> None:
        for node in self.started:
            thread = node._thread
            if thread is not None and thread.is_alive():
                node._stop_mode = node._stop_mode or "stop"
                node._wake()
                thread.join(10)
            node._close_wake_pipe()

    @staticmethod
    async def leader_of(group: list[RaftNode], timeout: float = 10.0) -> RaftNode:
        return await leader_of(group, timeout)


async def leader_of(group: list[RaftNode], timeout: float = 10.0) -> RaftNode:
    """The node all live members agree is leader."""

    def probe():
        leaders = {n.status().leader for n in group}
        if len(leaders) == 1 and None not in leaders:
            address = leaders.pop()
            for n in group:
                if n.config.self_address == address and n.status().is_leader:
                    return n
        return None

    return await wait_until(probe, timeout, "one leader agreed by all")

