"""Building a node's streaming side from Options: store, state machine, Raft, service.

Layout of a FILE store's directory: ``<dir>/store`` holds the LMDB environment,
``<dir>/raft`` the Raft journal, metadata and snapshots. A MEMORY store keeps its
Raft files in a temporary directory removed at stop.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

from raft import RaftConfig
from storage import LmdbStore, MemoryStore

from .config import Options
from .server import NatsServer
from .server.stan import Replicator, StanService, StanSettings
from .server.stan.clients import HeartbeatSettings
from .state import ChannelLimits, LimitsResolver, StateMachine
from .state import records

log = logging.getLogger("runnel")

META_MEMBERS = "cluster_members"  # the member list this node's cluster was created with


class StartupError(RuntimeError):
    """The node must not start (wrong cluster ID, unusable store)."""


def limits_resolver(options: Options) -> LimitsResolver:
    def for_channel(name: str) -> ChannelLimits:
        limits = options.channel_limits_for(name)
        return ChannelLimits(limits.max_msgs, limits.max_bytes, limits.max_age_s,
                             limits.max_subs, limits.max_inactivity_s)
    return LimitsResolver(options.limits.max_channels, for_channel)


def _all_limits(options: Options) -> list:
    return [options.limits] + [options.channel_limits_for(name) for name in options.channel_limits]


class Streaming:
    """The STAN side of one node: owns the store and the Raft node's files."""

    def __init__(self, options: Options, server: NatsServer):
        self.options = options
        self._temp_dir: str | None = None
        self.store = self._open_store()
        self._check_integrity()
        self._check_cluster_id()
        if options.clustered:
            self._check_membership()
        self.machine = StateMachine(self.store, limits_resolver(options))
        self.replicator = Replicator(self.machine, self._raft_config())
        self.service = StanService(server, self.machine, self.replicator, self._settings())

    def _open_store(self):
        options = self.options
        if options.store_type == "FILE":
            path = os.path.join(options.store_dir, "store")
            log.info("STREAM: Message store is FILE (%s)", os.path.abspath(path))
            return LmdbStore(path, sync=options.file_sync)
        log.info("STREAM: Message store is MEMORY")
        return MemoryStore()

    def _check_integrity(self) -> None:
        """A node never serves (nor votes with) data it cannot verify (ARCHITECTURE §3):
        every stored message is checked against its checksum at start (one scan)."""
        if self.options.store_type != "FILE":
            return
        damaged = records.damaged_messages(self.store)
        if damaged:
            self.store.close()
            where = ", ".join(f"{channel} seq {seq}" for channel, seq in damaged)
            raise StartupError(f"the store under {self.options.store_dir} is corrupt "
                               f"(checksum mismatch: {where}); wipe it and let the node "
                               f"rejoin its cluster, or restore a backup")

    def _check_cluster_id(self) -> None:
        cluster_id = self.options.cluster_id
        with self.store.read() as txn:
            stored = txn.get_meta(records.META_CLUSTER_ID)
        if stored is None:
            with self.store.write() as txn:
                txn.put_meta(records.META_CLUSTER_ID, cluster_id.encode())
        elif stored.decode() != cluster_id:
            raise StartupError(f'cluster ID "{cluster_id}" does not match recovered value '
                               f'of "{stored.decode()}"')

    def _check_membership(self) -> None:
        """The member list is fixed: a node restarted with another list than the one it
        was created with (a moved peer, an extra member) would count a different
        majority than the others. Refuse it rather than diverge."""
        given = json.dumps(parse_peers(self.options.cluster_peers), sort_keys=True)
        with self.store.read() as txn:
            stored = txn.get_meta(META_MEMBERS)
        if stored is None:
            with self.store.write() as txn:
                txn.put_meta(META_MEMBERS, given.encode())
        elif stored.decode() != given:
            raise StartupError(f"--cluster_peers {given} does not match the cluster this node "
                               f"belongs to, {stored.decode()} (members are fixed; to move a "
                               f"node, wipe its data and let it rejoin)")

    def _raft_config(self) -> RaftConfig:
        options = self.options
        if options.clustered:
            return self._cluster_raft_config()
        if options.store_type == "FILE":
            data_dir = os.path.join(options.store_dir, "raft")
            sync = options.file_sync
        else:
            data_dir = self._temp_dir = tempfile.mkdtemp(prefix="runnel-raft-")
            sync = False
        # A group of one binds no port: the address is only the member's name.
        return RaftConfig(self_address="127.0.0.1:0", data_dir=data_dir, sync=sync)

    def _cluster_raft_config(self) -> RaftConfig:
        """``--cluster_peers id@host:port,...`` lists every member, this node included
        (found by ``--cluster_node_id``); the Raft journal goes to ``--cluster_log_path``
        (default ``<dir>/raft``) and is fsynced unless ``--cluster_sync=false``."""
        options = self.options
        members = parse_peers(options.cluster_peers)
        node_id = options.cluster_node_id
        if node_id not in members:
            raise StartupError(f"--cluster_peers must list this node as {node_id or '<id>'}"
                               f"@host:port (got {','.join(options.cluster_peers) or 'none'})")
        others = tuple(address for name, address in sorted(members.items()) if name != node_id)
        data_dir = options.cluster_log_path or os.path.join(options.store_dir, "raft")
        config = RaftConfig(self_address=members[node_id], data_dir=data_dir, peers=others,
                            sync=options.cluster_sync, bind_address=_bind_address(members[node_id]))
        try:
            config.validate()
        except ValueError as exc:
            raise StartupError(f"bad cluster configuration: {exc}") from exc
        return config

    def _settings(self) -> StanSettings:
        options = self.options
        limits = _all_limits(options)
        ages = [l.max_age_s for l in limits if l.max_age_s > 0]
        idles = [l.max_inactivity_s for l in limits if l.max_inactivity_s > 0]
        return StanSettings(
            cluster_id=options.cluster_id, node_id=options.cluster_node_id or "local",
            clustered=options.clustered,
            heartbeats=HeartbeatSettings(options.hb_interval_s, options.hb_timeout_s,
                                         options.hb_fail_count),
            expire_every_s=min([1.0] + [age / 2 for age in ages]) if ages else 0.0,
            inactivity_every_s=min([1.0] + [idle / 2 for idle in idles]) if idles else 0.0,
            max_inactivity_s=min(idles) if idles else 0.0)

    def cluster_info(self) -> dict | None:
        """Raft's view of this node for monitoring, or None when not clustered."""
        if not self.options.clustered:
            return None
        members = parse_peers(self.options.cluster_peers)
        by_address = {address: name for name, address in members.items()}
        status = self.replicator.status()
        leader = by_address.get(status.leader) if status.leader else None
        role = "Leader" if status.is_leader else ("Follower" if leader else "Candidate")
        peers = [{"node_id": by_address.get(peer["address"], ""), **peer}
                 for peer in self.replicator.raft.peer_states()]
        return {"node_id": self.options.cluster_node_id, "role": role, "leader": leader or "",
                "term": status.term, "commit_index": status.commit_index,
                "applied_index": status.last_applied, "log_first_index": status.log_first_index,
                "log_last_index": status.log_last_index, "snapshot_index": status.snapshot_index,
                "has_quorum": status.has_quorum, "fsyncs": status.fsyncs,
                "fsync_seconds": status.fsync_seconds, "peers": peers}

    async def start(self) -> None:
        await self.service.start()

    async def stop(self) -> None:
        await self.service.stop()
        self.store.close()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)


def parse_peers(entries: list[str]) -> dict[str, str]:
    """``["a@127.0.0.1:6222", ...]`` -> ``{"a": "127.0.0.1:6222", ...}``."""
    members: dict[str, str] = {}
    for entry in entries:
        node_id, sep, address = entry.strip().partition("@")
        host, colon, port = address.rpartition(":")
        if not sep or not node_id or not colon or not host or not port.isdigit():
            raise StartupError(f"bad --cluster_peers entry {entry!r}: expected id@host:port")
        if node_id in members:
            raise StartupError(f"duplicate node ID {node_id!r} in --cluster_peers")
        if address in members.values():
            raise StartupError(f"--cluster_peers gives two members the Raft address {address}")
        members[node_id] = address
    return members


def _bind_address(address: str) -> str | None:
    """Bind the Raft port on every interface when the advertised host is a name (as in
    containers, where peers reach each other by service name)."""
    host, _, port = address.rpartition(":")
    return None if host.replace(".", "").isdigit() else f"0.0.0.0:{port}"
