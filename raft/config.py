"""RaftConfig: what an operator or a test may choose, and its mapping onto
pysyncobj's SyncObjConf. Units are last in names (``_s`` seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pysyncobj import SyncObjConf

from raft.fsio import OsFS

_NEVER_ENTRIES = 1 << 62
_NEVER_S = 1e12


@dataclass(frozen=True)
class RaftConfig:
    #: This member's peer address "host:port" (also its id in the group). A
    #: group of one binds no port: any unique "name:port" string will do.
    self_address: str
    #: Directory for raft.log, raft.meta, raft.commit, raft.snapshot.
    data_dir: str
    #: The other members' addresses. Empty: a group of one.
    peers: tuple[str, ...] = ()
    #: fsync the journal (group commit) before anything is acknowledged.
    #: False: faster, and a power cut loses acknowledged entries.
    sync: bool = True
    #: Poll timeout of the tick thread when idle (proposals wake it at once).
    tick_s: float = 0.02
    #: Heartbeat period (pysyncobj appendEntriesPeriod). New entries are sent
    #: at once, not on this period.
    heartbeat_s: float = 0.05
    #: Election timeout range (pysyncobj raftMinTimeout/raftMaxTimeout).
    election_timeout_min_s: float = 0.5
    election_timeout_max_s: float = 1.0
    #: A leader that heard from no majority for this long steps down.
    leader_fallback_s: float = 2.0
    connection_timeout_s: float = 3.5
    connection_retry_s: float = 0.5
    #: Take a snapshot (and compact the log) after this many entries...
    snapshot_entries_min: int = 20000
    #: ...or this long after the previous one.
    snapshot_interval_s: float = 600.0
    #: Largest command accepted by propose().
    command_bytes_max: int = 8 << 20
    #: Most bytes of entries per append-entries message (must exceed the above).
    append_batch_bytes: int = 16 << 20
    #: Proposals queued for the tick thread before Overloaded.
    queue_size_max: int = 100000
    #: Bind address when it differs from self_address (NAT, 0.0.0.0).
    bind_address: str | None = None
    #: msgpack framing without zlib (lean.py) instead of pysyncobj's pickle+zlib.
    lean_transport: bool = True
    #: File layer (tests pass a faultfs.PowerCutFS).
    fs: OsFS = field(default_factory=OsFS, compare=False, repr=False)
    #: Testing knob: keep pysyncobj's nextIndex regression (see DESIGN.md).
    fix_next_index: bool = True

    def validate(self) -> None:
        if self.command_bytes_max >= self.append_batch_bytes:
            raise ValueError("command_bytes_max must be below append_batch_bytes "
                             "(pysyncobj's chunked transfer of one big entry is avoided)")
        if self.election_timeout_min_s <= 3 * self.heartbeat_s:
            raise ValueError("election_timeout_min_s must exceed 3 * heartbeat_s")
        if self.self_address in self.peers:
            raise ValueError("peers must not include self_address")

    def syncobj_conf(self, snapshots, on_state_changed, snapshots_enabled: bool) -> SyncObjConf:
        alone = not self.peers
        min_s, max_s = (0.16, 0.2) if alone else (self.election_timeout_min_s,
                                                  self.election_timeout_max_s)
        heartbeat_s = 0.05 if alone else self.heartbeat_s
        return SyncObjConf(
            autoTick=False,
            appendEntriesUseBatch=True,
            appendEntriesPeriod=heartbeat_s,
            appendEntriesBatchSizeBytes=self.append_batch_bytes,
            raftMinTimeout=min_s,
            raftMaxTimeout=max_s,
            leaderFallbackTimeout=max(self.leader_fallback_s, 2 * heartbeat_s),
            connectionTimeout=max(self.connection_timeout_s, max_s),
            connectionRetryTime=self.connection_retry_s,
            commandsQueueSize=self.queue_size_max,
            commandsWaitLeader=True,
            bindAddress=self.bind_address or self.self_address,
            maxBindRetries=1,
            bindRetryTime=0.1,
            sendBufferSize=1 << 21,
            recvBufferSize=1 << 21,
            dynamicMembershipChange=False,
            # Peers addressed by name (containers, pods) come back on new IPs: look
            # names up again after seconds, not pysyncobj's default 10 minutes.
            dnsCacheTime=5.0,
            dnsFailCacheTime=1.0,
            fullDumpFile=snapshots.path,
            serializer=snapshots.serialize,
            deserializer=snapshots.deserialize,
            serializeChecker=snapshots.check,
            logCompactionMinEntries=self.snapshot_entries_min if snapshots_enabled else _NEVER_ENTRIES,
            logCompactionMinTime=self.snapshot_interval_s if snapshots_enabled else _NEVER_S,
            onStateChanged=on_state_changed,
        )
