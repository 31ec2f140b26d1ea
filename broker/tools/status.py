"""`runnel status [-s URL]...`: a readable summary of a node or a cluster, read from
the monitoring endpoints (reference §5): role and leader, channels with their message
counts and first/last sequence, subscriptions with their pending counts, clients.

Each ``-s`` is the monitoring URL of one node (a cluster: one per node). Nodes are
asked in parallel, every HTTP request with a timeout; a node that does not answer is
one clear line, never a traceback. ``--json`` prints the collected data instead.
Exit status: 0 if every node answered, 1 otherwise (2 for bad flags).

Plain synchronous urllib on purpose: this is a small operator tool, not a client.
Keys the node does not serve yet (``role``, ``node_id``, ``/streaming/clusterz``)
are shown when present and skipped when absent.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

DEFAULT_URL = "http://127.0.0.1:8222"
DEFAULT_TIMEOUT = 3.0
#: Page size asked of /channelsz and /clientsz, and a bound on the pages followed.
PAGE = 1024
MAX_PAGES = 1000
#: Keys of /streaming/clusterz (a later issue) shown first, in this order, if present.
_CLUSTER_KEYS = ("node_id", "role", "leader", "term", "commit_index", "applied_index",
                 "last_index", "last_term")
_HEADER_KEYS = ("cluster_id", "server_id", "now")


class FetchError(Exception):
    """A request that got no usable JSON answer; the message is for the operator.
    ``answered`` tells an HTTP-level failure (the node is up) from a network one."""

    def __init__(self, message: str, answered: bool = False):
        super().__init__(message)
        self.answered = answered


class NotFound(FetchError):
    """HTTP 404: the endpoint is not served (e.g. /streaming/clusterz today)."""


# -- collecting ----------------------------------------------------------------------

def normalize_url(url: str) -> str:
    """``host:port`` or ``http://host:port/base/`` -> ``http://host:port/base``."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def fetch_json(base: str, path: str, timeout: float, **query: Any) -> Any:
    """GET ``base + path`` and decode its JSON body, or raise FetchError."""
    url = base + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        text = _body_text(exc)
        message = f"HTTP {exc.code} on {path}" + (f": {text}" if text else "")
        raise (NotFound if exc.code == 404 else FetchError)(message, answered=True) from None
    except urllib.error.URLError as exc:
        raise FetchError(_reason(exc.reason)) from None
    except (TimeoutError, OSError) as exc:  # a timeout while reading, a reset...
        raise FetchError(_reason(exc)) from None
    try:
        return json.loads(body)
    except ValueError:
        raise FetchError(f"{path} did not answer JSON", answered=True) from None


def _body_text(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", "replace").strip()
    except Exception:
        return ""
    return " ".join(text.split())[:200]


def _reason(reason: Any) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def fetch_list(base: str, path: str, key: str, timeout: float) -> list[dict]:
    """Every item of a paged list endpoint (§5.1), ``subs=1``, following the pages."""
    items: list[dict] = []
    offset = 0
    for _ in range(MAX_PAGES):
        page = fetch_json(base, path, timeout, subs=1, offset=offset, limit=PAGE)
        got = page.get(key) or []
        items.extend(got)
        offset += len(got)
        if not got or offset >= page.get("total", 0):
            break
    return items


def collect_node(url: str, timeout: float) -> dict:
    """What one node serves: ``ok`` is False, with ``error``, if any of the required
    endpoints did not answer. Whatever was read before the failure is kept."""
    base = normalize_url(url)
    node: dict = {"url": base, "ok": False, "reachable": False, "error": None}
    try:
        try:
            node["serverz"] = fetch_json(base, "/streaming/serverz", timeout)
        except NotFound as exc:
            raise NotFound(f"{exc} (not a streaming server?)", answered=True) from None
        node["storez"] = fetch_json(base, "/streaming/storez", timeout)
        try:
            node["clusterz"] = fetch_json(base, "/streaming/clusterz", timeout)
        except NotFound:
            node["clusterz"] = None
        node["channels"] = fetch_list(base, "/streaming/channelsz", "channels", timeout)
        node["clients"] = fetch_list(base, "/streaming/clientsz", "clients", timeout)
    except FetchError as exc:
        node["error"] = str(exc)
        node["reachable"] = exc.answered or "serverz" in node
        return node
    node["ok"] = node["reachable"] = True
    return node


def collect(urls: list[str], timeout: float) -> dict:
    """All the nodes, asked in parallel, and the leader(s) they report."""
    with ThreadPoolExecutor(max_workers=min(len(urls), 16)) as pool:
        nodes = list(pool.map(lambda url: collect_node(url, timeout), urls))
    return {"nodes": nodes, "leaders": leaders(nodes)}


def leaders(nodes: list[dict]) -> list[str]:
    """The leader named by the nodes: a ``leader`` key of clusterz or serverz, or the
    node whose role is Leader. Normally one; several means the nodes disagree."""
    found: list[str] = []
    for node in nodes:
        serverz = node.get("serverz") or {}
        clusterz = node.get("clusterz") or {}
        named = clusterz.get("leader") or serverz.get("leader")
        if not named and (serverz.get("role") or clusterz.get("role")) == "Leader":
            named = serverz.get("node_id") or clusterz.get("node_id") or node["url"]
        if named and named not in found:
            found.append(str(named))
    return found


# -- showing -------------------------------------------------------------------------

def table(headers: list[str], rows: Iterable[list[Any]], numeric: Iterable[int] = (),
          indent: str = "  ") -> list[str]:
    """Aligned columns; the ``numeric`` column indexes are right-aligned."""
    rows = [["-" if cell is None or cell == "" else str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    right = set(numeric)

    def line(cells: list[str]) -> str:
        return indent + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(headers)] + [line(r) for r in rows]


def _kind(sub: dict) -> str:
    if sub.get("queue_name"):
        text = ("durable queue " if sub.get("is_durable") else "queue ") + sub["queue_name"]
    elif sub.get("durable_name"):
        text = "durable " + sub["durable_name"]
    else:
        text = "-"
    return text + (" (offline)" if sub.get("is_offline") else "")


def _pairs(data: dict, keys: Iterable[str]) -> str:
    return "  ".join(f"{key} {data[key]}" for key in keys
                     if key in data and data[key] not in (None, ""))


def render_node(node: dict, cluster_leaders: list[str]) -> list[str]:
    serverz = node.get("serverz") or {}
    if not node["ok"] and not serverz:
        state = "ERROR" if node.get("reachable") else "UNREACHABLE"
        return [f"== {node['url']}: {state} ({node['error']})"]
    out = [f"== {node['url']}: " + ("reachable" if node["ok"]
                                    else f"ERROR ({node['error']})")]
    out.append("  " + _pairs(serverz, ("server_id", "cluster_id", "state")))
    clusterz = node.get("clusterz") or {}
    role = serverz.get("role") or clusterz.get("role")
    node_id = serverz.get("node_id") or clusterz.get("node_id")
    if role or node_id or serverz.get("state") == "CLUSTERED" or clusterz:
        leader = (clusterz.get("leader") or serverz.get("leader")
                  or (node_id if role == "Leader" else None)
                  or (", ".join(cluster_leaders) if cluster_leaders else "unknown"))
        out.append("  " + _pairs({"node_id": node_id, "role": role or "unknown",
                                  "leader": leader}, ("node_id", "role", "leader")))
    if clusterz:
        shown = [k for k in _CLUSTER_KEYS if k not in ("node_id", "role", "leader")]
        rest = [k for k, v in clusterz.items()
                if k not in _CLUSTER_KEYS and k not in _HEADER_KEYS and k != "peers"
                and not isinstance(v, (dict, list))]
        line = _pairs(clusterz, shown + rest)
        if line:
            out.append("  raft: " + line)
        peers = clusterz.get("peers")
        if isinstance(peers, (list, dict)) and peers:
            out.append("  peers: " + ", ".join(_peer(p) for p in
                                                (peers.items() if isinstance(peers, dict)
                                                 else peers)))
    storez = node.get("storez") or {}
    out.append("  " + _pairs({"version": serverz.get("version"),
                              "uptime": serverz.get("uptime"),
                              "store": storez.get("type")},
                             ("version", "uptime", "store")))
    out.append("  " + _pairs(serverz, ("clients", "channels", "subscriptions", "total_msgs",
                                       "total_bytes", "in_msgs", "out_msgs")))
    if "channels" not in node:
        return out

    channels = node["channels"]
    out.append("")
    out.append(f"  channels ({len(channels)})")
    if channels:
        out += table(["NAME", "MSGS", "BYTES", "FIRST", "LAST", "SUBS"],
                     ([c.get("name"), c.get("msgs"), c.get("bytes"), c.get("first_seq"),
                       c.get("last_seq"), c.get("subs_count")] for c in channels),
                     numeric=range(1, 6), indent="    ")

    subs = [(c.get("name"), s) for c in channels for s in c.get("subscriptions") or []]
    out.append("")
    out.append(f"  subscriptions ({len(subs)})")
    if subs:
        out += table(["CLIENT", "CHANNEL", "DURABLE/QUEUE", "INBOX", "PENDING", "INFLIGHT",
                      "STALLED", "LAST SENT"],
                     ([s.get("client_id"), channel, _kind(s), s.get("inbox"),
                       s.get("pending_count"), s.get("max_inflight"),
                       "yes" if s.get("is_stalled") else "no", s.get("last_sent")]
                      for channel, s in subs),
                     numeric=(4, 5, 7), indent="    ")

    if "clients" not in node:
        return out
    clients = node["clients"]
    out.append("")
    out.append(f"  clients ({len(clients)})")
    if clients:
        out += table(["ID", "SUBS", "CHANNELS"],
                     ([c.get("id"), c.get("subs_count"),
                       ", ".join(_channel_counts(c.get("subscriptions") or {}))]
                      for c in clients),
                     numeric=(1,), indent="    ")
    return out


def _peer(peer: Any) -> str:
    if isinstance(peer, tuple):  # from a dict: (id, details)
        name, details = peer
        return f"{name} ({_pairs(details, list(details))})" if isinstance(details, dict) \
            else f"{name} ({details})"
    if isinstance(peer, dict):
        name = peer.get("id") or peer.get("node_id") or peer.get("name") or "?"
        rest = _pairs(peer, [k for k in peer if k not in ("id", "node_id", "name")
                             and not isinstance(peer[k], (dict, list))])
        return f"{name} ({rest})" if rest else str(name)
    return str(peer)


def _channel_counts(by_channel: dict) -> list[str]:
    return [name if len(subs) == 1 else f"{name} x{len(subs)}"
            for name, subs in sorted(by_channel.items())]


def render(data: dict) -> str:
    nodes = data["nodes"]
    out: list[str] = []
    if len(nodes) > 1:
        answered = sum(1 for node in nodes if node["ok"])
        line = f"cluster: {len(nodes)} nodes, {answered} answered"
        if data["leaders"]:
            line += ", leader " + " / ".join(data["leaders"])
            if len(data["leaders"]) > 1:
                line += " (the nodes disagree)"
        out += [line, ""]
    for index, node in enumerate(nodes):
        if index:
            out.append("")
        out += render_node(node, data["leaders"])
    return "\n".join(out) + "\n"


# -- command -------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runnel status",
        description="Summarise Runnel nodes from their monitoring endpoints "
                    "(/streaming/serverz, storez, channelsz, clientsz).")
    p.add_argument("-s", "--server", dest="servers", action="append", metavar="URL",
                   help=f"monitoring URL of a node, repeat for each node of a cluster "
                        f"(default {DEFAULT_URL})")
    p.add_argument("--json", action="store_true", help="print the collected data as JSON")
    p.add_argument("-t", "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"timeout of each HTTP request (default {DEFAULT_TIMEOUT:g})")
    return p


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # -h (0) or a bad flag (2): argparse printed the message
        return exc.code if isinstance(exc.code, int) else 2
    if args.timeout <= 0:
        print("runnel status: the timeout must be positive", file=sys.stderr)
        return 2
    data = collect(args.servers or [DEFAULT_URL], args.timeout)
    if not args.json:
        sys.stdout.write(render(data))
    else:
        print(json.dumps(data, indent=2))
        for node in data["nodes"]:  # the text output says it in place
            if not node["ok"]:
                print(f"runnel status: {node['url']}: {node['error']}", file=sys.stderr)
    return 0 if all(node["ok"] for node in data["nodes"]) else 1
