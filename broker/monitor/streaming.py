"""The streaming endpoints of the monitoring port (reference §5.2–§5.5) and STAN metrics.

`StreamingProvider` serves ``/streaming`` (an HTML index), ``/streaming/serverz``,
``storez``, ``clientsz``, ``channelsz`` and ``isFTActive``, and adds a Prometheus
collector for channels, subscriptions, clients and the STAN traffic counters.

Where the numbers come from (see DESIGN.md, "Streaming endpoints"):

* Clients, channels, subscriptions and their pending messages are read from the
  store, the replicated truth, in ONE short read transaction per request (or per
  scrape), opened and closed inside a synchronous function: never across an
  ``await``. The state machine's model belongs to the Raft apply thread and is
  never read here.
* ``in_msgs``/``in_bytes`` and ``out_msgs``/``out_bytes`` are this node's
  counters, kept by the STAN service on the event loop.
"""
from __future__ import annotations

import html
import os
import re
import resource
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..server.server import VERSION
from ..server.stan.nuid import next_nuid
from ..state import records
from .formats import rfc3339, to_ns, uptime
from .provider import Endpoint, MonitorError, Provider
from .query import DEFAULT_LIST_SIZE

if TYPE_CHECKING:
    from ..state.model import Sub
    from .service import Monitor

__all__ = ["StreamingProvider", "StreamingCollector", "STAN_COMPAT_VERSION"]

#: The nats-streaming-server version whose monitoring API these endpoints reproduce.
STAN_COMPAT_VERSION = "0.25.6"

_NS_PER_S = 1_000_000_000
_GO_INT = re.compile(r"[+-]?[0-9]+")
_PAGES = ("serverz", "storez", "clientsz", "channelsz", "clusterz", "isFTActive")


class StreamingProvider(Provider):
    """The ``/streaming/*`` endpoints, the STAN metrics and a health check.

    ``node`` needs ``.streaming`` (a started `broker.streaming.Streaming`), read
    at every request, so the provider may be made before or after it starts.
    ``server_id`` is a fresh NUID for each process start, as nats-streaming's.
    """

    def __init__(self, node: Any):
        self.node = node
        self.server_id = next_nuid()
        self.started = time.time()

    # -- Provider hooks --

    def endpoints(self, monitor: Monitor) -> Iterable[Endpoint]:
        return (
            Endpoint("/streaming", lambda request: self.index(monitor), "Streaming"),
            Endpoint("/streaming/serverz", lambda request: self.serverz(time.time())),
            Endpoint("/streaming/storez", lambda request: self.storez(time.time())),
            Endpoint("/streaming/clientsz",
                     lambda request: self.clientsz(request.query, time.time())),
            Endpoint("/streaming/channelsz",
                     lambda request: self.channelsz(request.query, time.time())),
            Endpoint("/streaming/isFTActive", lambda request: web.Response(status=204)),
            Endpoint("/streaming/clusterz", lambda request: self.clusterz(time.time()),
                     "Cluster"),
        )

    def collectors(self, monitor: Monitor) -> Iterable[object]:
        return (StreamingCollector(self),)

    def health_error(self, monitor: Monitor) -> str | None:
        if getattr(self.node, "streaming", None) is None:
            return "streaming server not started"
        return None

    # -- shared pieces --

    @property
    def streaming(self):
        streaming = getattr(self.node, "streaming", None)
        if streaming is None:
            raise MonitorError(503, "streaming server not started")
        return streaming

    def _header(self, now_s: float) -> dict:
        return {"cluster_id": self.streaming.service.settings.cluster_id,
                "server_id": self.server_id,
                "now": rfc3339(to_ns(now_s))}

    # -- /streaming --

    def index(self, monitor: Monitor) -> web.Response:
        base = monitor.base_path + "/streaming/"
        links = "\n".join(f'    <a href="{html.escape(base + page)}">{page}</a><br/>'
                          for page in _PAGES)
        body = (f"<html lang=\"en\">\n  <head><title>Runnel streaming</title></head>\n"
                f"  <body>\n    <h1>Runnel streaming monitoring</h1>\n{links}\n"
                f"  </body>\n</html>\n")
        return web.Response(text=body, content_type="text/html")

    # -- /streaming/serverz (§5.2) --

    def serverz(self, now_s: float) -> dict:
        streaming = self.streaming
        service = streaming.service
        with streaming.store.read() as txn:
            channels = txn.list_channels()
            clients = len(txn.list_clients())
            subscriptions = sum(len(txn.list_subscriptions(channel.channel_id))
                                for channel in channels)
        data = {
            "cluster_id": service.settings.cluster_id,
            "server_id": self.server_id,
            "version": STAN_COMPAT_VERSION,
            "go": "runnel-" + VERSION,
            "state": "STANDALONE",
            "now": rfc3339(to_ns(now_s)),
            "start_time": rfc3339(to_ns(self.started)),
            "uptime": uptime(now_s - self.started),
            "clients": clients,
            "subscriptions": subscriptions,
            "channels": len(channels),
            "total_msgs": sum(channel.stats.msgs for channel in channels),
            "total_bytes": sum(channel.stats.bytes for channel in channels),
            "in_msgs": service.in_msgs,
            "in_bytes": service.in_bytes,
            "out_msgs": service.delivery.out_msgs,
            "out_bytes": service.delivery.out_bytes,
        }
        cluster = streaming.cluster_info()
        if cluster is not None:  # the reference's clustered serverz: state, role, node_id
            items = list(data.items())
            at = [key for key, _ in items].index("state")
            items[at] = ("state", "CLUSTERED")
            items[at + 1:at + 1] = [("role", cluster["role"]), ("node_id", cluster["node_id"]),
                                    ("leader", cluster["leader"]), ("term", cluster["term"])]
            data = dict(items)
        open_fds, max_fds = fd_counts()
        if open_fds:
            data["open_fds"] = open_fds
        if max_fds:
            data["max_fds"] = max_fds
        return data

    # -- /streaming/clusterz (Runnel: Raft's view of this node) --

    def clusterz(self, now_s: float) -> dict:
        cluster = self.streaming.cluster_info()
        if cluster is None:
            raise MonitorError(404, "not clustered")
        return {**self._header(now_s), **cluster}

    # -- /streaming/storez (§5.3) --

    def storez(self, now_s: float) -> dict:
        streaming = self.streaming
        with streaming.store.read() as txn:
            channels = txn.list_channels()
        data = self._header(now_s)
        data["type"] = streaming.options.store_type.upper()
        data["limits"] = store_limits_json(streaming.options)
        data["total_msgs"] = sum(channel.stats.msgs for channel in channels)
        data["total_bytes"] = sum(channel.stats.bytes for channel in channels)
        return data

    # -- /streaming/clientsz (§5.4) --

    def clientsz(self, query: Mapping[str, str], now_s: float) -> dict:
        streaming = self.streaming
        with_subs = go_int(query.get("subs", "")) == 1
        client_id = query.get("client", "")
        if client_id:
            with streaming.store.read() as txn:
                record = txn.get_client(client_id)
                if record is None:
                    raise MonitorError(404, f"Client {client_id} not found")
                client = records.client_from_record(client_id, record)
                subs = online_subs_by_client(txn, {client_id})
            return clientz(client, subs.get(client_id, []), with_subs)
        offset, limit = paging(query)
        with streaming.store.read() as txn:
            stored = txn.list_clients()
            chosen = [records.client_from_record(cid, record)
                      for cid, record in stored[offset:offset + limit]]
            subs = online_subs_by_client(txn, {c.client_id for c in chosen}) if chosen else {}
        data = self._header(now_s)
        data.update({"offset": offset, "limit": limit, "count": len(chosen),
                     "total": len(stored),
                     "clients": [clientz(c, subs.get(c.client_id, []), with_subs)
                                 for c in chosen]})
        return data

    # -- /streaming/channelsz (§5.5) --

    def channelsz(self, query: Mapping[str, str], now_s: float) -> dict:
        streaming = self.streaming
        with_subs = go_int(query.get("subs", "")) == 1
        name = query.get("channel", "")
        if name:
            with streaming.store.read() as txn:
                channel = txn.get_channel(name)
                if channel is None:
                    raise MonitorError(404, f"Channel {name} not found")
                return channelz(channel, subs_of(txn, channel), with_subs)
        offset, limit = paging(query)
        with streaming.store.read() as txn:
            stored = txn.list_channels()
            chosen = stored[offset:offset + limit]
            if with_subs:
                listed = [channelz(channel, subs_of(txn, channel), True) for channel in chosen]
        data = self._header(now_s)
        data.update({"offset": offset, "limit": limit, "count": len(chosen),
                     "total": len(stored)})
        if with_subs:
            if listed:
                data["channels"] = listed
        elif chosen:
            data["names"] = [channel.name for channel in chosen]
        return data


# -- JSON objects --

def subscriptionz(sub: Sub) -> dict:
    """A Subscriptionz (§5.4): durable queue members show ``durable:group`` as queue_name."""
    data = {"client_id": sub.client_id, "inbox": sub.inbox, "ack_inbox": sub.ack_inbox}
    if sub.durable_name and not sub.queue:
        data["durable_name"] = sub.durable_name
    if sub.queue:
        data["queue_name"] = sub.queue
    pending = len(sub.pending)
    data.update({
        "is_durable": bool(sub.is_durable),
        "is_offline": bool(sub.offline),
        "max_inflight": sub.max_inflight,
        "ack_wait": sub.ack_wait_s,
        "last_sent": sub.last_sent,
        "pending_count": pending,
        "is_stalled": pending >= sub.max_inflight,
    })
    return data


def clientz(client, subs: list[Sub], with_subs: bool) -> dict:
    """A Clientz: ``subs`` are the client's online subscriptions, by sub id."""
    data = {"id": client.client_id, "hb_inbox": client.hb_inbox, "subs_count": len(subs)}
    if with_subs and subs:
        by_channel: dict[str, list[dict]] = {}
        for sub in sorted(subs, key=lambda s: (s.channel, s.sub_id)):
            by_channel.setdefault(sub.channel, []).append(subscriptionz(sub))
        data["subscriptions"] = by_channel
    return data


def channelz(channel, subs: list[Sub], with_subs: bool) -> dict:
    """A Channelz: ``subs`` is every stored subscription (plain, offline durables,
    queue members, shadows), which is also what ``subs_count`` counts."""
    stats = channel.stats
    data = {"name": channel.name, "msgs": stats.msgs, "bytes": stats.bytes,
            "first_seq": stats.first_seq, "last_seq": stats.last_seq,
            "subs_count": len(subs)}
    if with_subs and subs:
        data["subscriptions"] = [subscriptionz(sub) for sub in subs]
    return data


# -- store reads (inside a caller's short read transaction) --

def subs_of(txn, channel) -> list[Sub]:
    """Every stored subscription of a channel, decoded, by sub id."""
    return [records.sub_from_record(sub_id, channel.name, record)
            for sub_id, record in txn.list_subscriptions(channel.channel_id)]


def online_subs_by_client(txn, client_ids: set[str]) -> dict[str, list[Sub]]:
    """The online subscriptions of the given clients, over every channel.

    Offline durables and shadows keep their last client ID in the record but
    belong to no client, as in nats-streaming (a client lists its live subs).
    """
    found: dict[str, list[Sub]] = {}
    for channel in txn.list_channels():
        for sub in subs_of(txn, channel):
            if not sub.offline and sub.client_id in client_ids:
                found.setdefault(sub.client_id, []).append(sub)
    return found


# -- query parameters --

def go_int(raw: str) -> int:
    """Go's ``strconv.Atoi`` with the error ignored, as nats-streaming reads its
    monitoring parameters: anything that is not an integer counts as 0."""
    return int(raw) if _GO_INT.fullmatch(raw) else 0


def paging(query: Mapping[str, str]) -> tuple[int, int]:
    """§5.1: offset < 0 becomes 0; limit <= 0 (or absent, or not a number) is 1024."""
    offset = max(0, go_int(query.get("offset", "")))
    limit = go_int(query.get("limit", ""))
    return offset, limit if limit > 0 else DEFAULT_LIST_SIZE


# -- limits --

def _ns(seconds: float) -> int:
    return round(seconds * _NS_PER_S)


def _limits_json(limits) -> dict:
    """nats-streaming's ChannelLimits keys, durations in nanoseconds."""
    return {"max_msgs": limits.max_msgs, "max_bytes": limits.max_bytes,
            "max_age": _ns(limits.max_age_s), "max_subscriptions": limits.max_subs,
            "max_inactivity": _ns(limits.max_inactivity_s)}


def store_limits_json(options) -> dict:
    """The ``limits`` of /storez: global, then each configured name with inheritance
    applied (``channels`` omitted when there is none)."""
    data = {"max_channels": options.limits.max_channels}
    data.update(_limits_json(options.limits))
    if options.channel_limits:
        data["channels"] = {name: _limits_json(entry_limits(options, name))
                            for name in sorted(options.channel_limits)}
    return data


def entry_limits(options, name: str):
    """The effective limits of the per-channel entry ``name`` (wildcards allowed):
    the global limits, overridden by every other entry that covers ``name`` from
    the widest to the narrowest, then by the entry's own values (§3.1)."""
    parents = [other for other in options.channel_limits
               if other != name and pattern_covers(other, name)]
    result = {"max_msgs": options.limits.max_msgs, "max_bytes": options.limits.max_bytes,
              "max_age_s": options.limits.max_age_s, "max_subs": options.limits.max_subs,
              "max_inactivity_s": options.limits.max_inactivity_s}
    for entry in sorted(parents, key=_specificity) + [name]:
        overrides = options.channel_limits[entry]
        for attr in result:
            value = getattr(overrides, attr)
            if value is not None:
                result[attr] = value
    return _Limits(**result)


@dataclass(frozen=True)
class _Limits:
    max_msgs: int
    max_bytes: int
    max_age_s: float
    max_subs: int
    max_inactivity_s: float


def pattern_covers(wide: str, narrow: str) -> bool:
    """Whether every channel matched by ``narrow`` is matched by ``wide``."""
    wide_tokens, narrow_tokens = wide.split("."), narrow.split(".")
    for index, token in enumerate(wide_tokens):
        if token == ">":
            return len(narrow_tokens) > index
        if index >= len(narrow_tokens):
            return False
        other = narrow_tokens[index]
        if token == "*":
            if other == ">":
                return False
        elif token != other:
            return False
    return len(narrow_tokens) == len(wide_tokens)


def _specificity(pattern: str) -> tuple[int, int, bool]:
    tokens = pattern.split(".")
    return (sum(1 for token in tokens if token not in ("*", ">")), len(tokens),
            tokens[-1] != ">")


# -- process --

def fd_counts() -> tuple[int, int]:
    """(open file descriptors, soft limit) from procfs; (0, 0) where there is none."""
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0, 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return open_fds, soft if soft != resource.RLIM_INFINITY else 0


# -- Prometheus --

_SUB_LABELS = ["channel", "client_id", "sub_id", "durable_name", "queue_name"]
# name (counters without _total), type, help, labels
_FAMILIES = (
    ("runnel_streaming_clients", "gauge", "STAN clients registered (replicated state).", []),
    ("runnel_streaming_channels", "gauge", "STAN channels (replicated state).", []),
    ("runnel_streaming_subscriptions", "gauge",
     "STAN subscriptions: plain, offline durables, queue members and shadows.", []),
    ("runnel_streaming_messages_in", "counter",
     "STAN publishes received on this node (parsed PubMsg).", []),
    ("runnel_streaming_bytes_in", "counter", "Raw PubMsg bytes received on this node.", []),
    ("runnel_streaming_messages_out", "counter",
     "STAN messages sent by this node to subscribers, redeliveries included.", []),
    ("runnel_streaming_bytes_out", "counter", "MsgProto bytes sent by this node.", []),
    ("runnel_streaming_channel_messages", "gauge", "Messages stored in the channel.",
     ["channel"]),
    ("runnel_streaming_channel_bytes", "gauge", "Record bytes stored in the channel.",
     ["channel"]),
    ("runnel_streaming_channel_first_seq", "gauge", "First sequence of the channel.",
     ["channel"]),
    ("runnel_streaming_channel_last_seq", "gauge", "Last sequence of the channel.",
     ["channel"]),
    ("runnel_streaming_subscription_pending", "gauge",
     "Messages sent to the subscription and not acknowledged yet.", _SUB_LABELS),
    ("runnel_streaming_subscription_lag", "gauge",
     "Channel last sequence minus the subscription's last sent sequence.", _SUB_LABELS),
)
_RAFT_FAMILIES = (
    ("runnel_raft_role", "gauge", "1 for this node's current Raft role.", ["role"]),
    ("runnel_raft_term", "gauge", "The Raft term this node is in.", []),
    ("runnel_raft_commit_index", "gauge", "The highest log index known committed.", []),
    ("runnel_raft_applied_index", "gauge", "The highest log index applied here.", []),
    ("runnel_raft_apply_lag", "gauge", "Committed entries not applied here yet.", []),
    ("runnel_raft_commit_lag", "gauge", "Entries in the log not committed yet.", []),
    ("runnel_raft_fsyncs", "counter", "fsync calls on the Raft journal.", []),
    ("runnel_raft_fsync_seconds", "counter", "Time spent in journal fsyncs (divide by "
     "runnel_raft_fsyncs_total for the mean latency).", []),
    ("runnel_raft_peer_connected", "gauge", "1 if this node is connected to the peer.",
     ["peer"]),
)
_FAMILIES = _FAMILIES + _RAFT_FAMILIES
_BY_NAME = {name: (kind, text, labels) for name, kind, text, labels in _FAMILIES}


def _family(name: str) -> Metric:
    kind, text, labels = _BY_NAME[name]
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(name, text, labels=labels or None)


class StreamingCollector:
    """Computes the STAN metrics at scrape time, from one short read transaction."""

    def __init__(self, provider: StreamingProvider):
        self.provider = provider

    def describe(self) -> Iterator[Metric]:
        for name in _BY_NAME:
            yield _family(name)

    def collect(self) -> Iterator[Metric]:
        streaming = getattr(self.provider.node, "streaming", None)
        if streaming is None:
            return
        service = streaming.service
        families = {name: _family(name) for name in _BY_NAME}
        with streaming.store.read() as txn:
            clients = len(txn.list_clients())
            channels = [(channel, subs_of(txn, channel)) for channel in txn.list_channels()]
        families["runnel_streaming_clients"].add_metric([], clients)
        families["runnel_streaming_channels"].add_metric([], len(channels))
        families["runnel_streaming_subscriptions"].add_metric(
            [], sum(len(subs) for _, subs in channels))
        families["runnel_streaming_messages_in"].add_metric([], service.in_msgs)
        families["runnel_streaming_bytes_in"].add_metric([], service.in_bytes)
        families["runnel_streaming_messages_out"].add_metric([], service.delivery.out_msgs)
        families["runnel_streaming_bytes_out"].add_metric([], service.delivery.out_bytes)
        for channel, subs in channels:
            stats = channel.stats
            families["runnel_streaming_channel_messages"].add_metric([channel.name], stats.msgs)
            families["runnel_streaming_channel_bytes"].add_metric([channel.name], stats.bytes)
            families["runnel_streaming_channel_first_seq"].add_metric([channel.name],
                                                                      stats.first_seq)
            families["runnel_streaming_channel_last_seq"].add_metric([channel.name],
                                                                     stats.last_seq)
            for sub in subs:
                labels = [channel.name, sub.client_id, str(sub.sub_id),
                          "" if sub.queue else sub.durable_name, sub.queue]
                families["runnel_streaming_subscription_pending"].add_metric(
                    labels, len(sub.pending))
                families["runnel_streaming_subscription_lag"].add_metric(
                    labels, max(0, stats.last_seq - sub.last_sent))
        raft_names = {name for name, *_ in _RAFT_FAMILIES}
        cluster = streaming.cluster_info()
        if cluster is not None:
            _add_raft_metrics(families, cluster)
        yield from (family for name, family in families.items()
                    if cluster is not None or name not in raft_names)


def _add_raft_metrics(families: dict, cluster: dict) -> None:
    for role in ("Leader", "Follower", "Candidate"):
        families["runnel_raft_role"].add_metric([role], 1 if cluster["role"] == role else 0)
    families["runnel_raft_term"].add_metric([], cluster["term"])
    families["runnel_raft_commit_index"].add_metric([], cluster["commit_index"])
    families["runnel_raft_applied_index"].add_metric([], cluster["applied_index"])
    families["runnel_raft_apply_lag"].add_metric(
        [], max(0, cluster["commit_index"] - cluster["applied_index"]))
    families["runnel_raft_commit_lag"].add_metric(
        [], max(0, cluster["log_last_index"] - cluster["commit_index"]))
    families["runnel_raft_fsyncs"].add_metric([], cluster["fsyncs"])
    families["runnel_raft_fsync_seconds"].add_metric([], cluster["fsync_seconds"])
    for peer in cluster["peers"]:
        families["runnel_raft_peer_connected"].add_metric([peer["node_id"]],
                                                          1 if peer["connected"] else 0)
