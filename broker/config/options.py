"""Runnel's options: built-in defaults < configuration file < command-line flags.

``PARAMS`` is the one table of every flag of reference §4.2 and §4.3 and every
configuration key Runnel knows: names, kind, default, the ``Options`` field it sets, the
file keys (with their aliases) and whether Runnel supports it yet. The flag parser, the
file reader and ``usage()`` all read this table; nothing else lists flags.
"""
from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping

from .conffile import file_value, parse_file
from .flags import ConfigError, format_duration, parse_args

G_STAN = "Streaming Server Options"
G_CLUSTER = "Streaming Server Clustering Options"
G_FILE = "Streaming Server File Store Options"
G_SQL = "Streaming Server SQL Store Options"
G_STAN_TLS = "Streaming Server TLS Options"
G_STAN_LOG = "Streaming Server Logging Options"
G_NATS = "NATS Server Options"
G_LOG = "Logging Options"
G_AUTH = "Authorization Options"
G_TLS = "TLS Options"
G_ROUTES = "NATS Clustering Options"
G_COMMON = "Common Options"
MiB = 1 << 20


@dataclass
class StoreLimits:
    """The global store limits (§3.1); 0 means unlimited."""

    max_channels: int = 100
    max_subs: int = 1000
    max_msgs: int = 1_000_000
    max_bytes: int = 1_024_000_000
    max_age_s: float = 0.0
    max_inactivity_s: float = 0.0


@dataclass
class ChannelLimits:
    """A per-channel override: None inherits, 0 means unlimited (Go stores that as -1)."""

    max_subs: int | None = None
    max_msgs: int | None = None
    max_bytes: int | None = None
    max_age_s: float | None = None
    max_inactivity_s: float | None = None


@dataclass
class Options:
    """Everything the command line and the configuration files can set."""

    # NATS server (§1.12, §4.3)
    host: str = "0.0.0.0"
    port: int = 4222                      # -1: a random port
    http_host: str = ""                   # "": the same as host
    http_port: int = 0                    # 0: no monitoring
    server_name: str = ""
    max_payload_bytes: int = 1_048_576
    max_control_line_bytes: int = 4096
    max_pending_bytes: int = 64 * MiB
    max_connections: int = 65_536
    ping_interval_s: float = 120.0
    ping_max: int = 2
    write_deadline_s: float = 10.0
    user: str = ""
    password: str = ""
    token: str = ""
    auth_timeout_s: float = 2.0
    routes: list[str] = field(default_factory=list)
    cluster_listen: str = ""
    # Files, logging, process
    config_file: str = ""
    stan_config_file: str = ""
    log_file: str = ""
    pid_file: str = ""
    debug: bool = False
    trace: bool = False
    stan_debug: bool = False
    stan_trace: bool = False
    show_help: bool = False
    show_version: bool = False
    # Streaming (§4.2)
    cluster_id: str = "test-cluster"
    store_type: str = "MEMORY"            # MEMORY or FILE, upper-case
    store_dir: str = ""
    hb_interval_s: float = 30.0
    hb_timeout_s: float = 10.0
    hb_fail_count: int = 10
    file_sync: bool = True
    limits: StoreLimits = field(default_factory=StoreLimits)
    channel_limits: dict[str, ChannelLimits] = field(default_factory=dict)
    # Streaming clustering (Raft)
    clustered: bool = False
    cluster_node_id: str = ""
    cluster_peers: list[str] = field(default_factory=list)
    cluster_log_path: str = ""
    cluster_sync: bool = True             # Runnel: safe by default (Go's default is false)

    def validate(self) -> None:
        """Raise ConfigError for the first rule the options break (cross-field rules)."""
        _validate_store(self)
        _validate_limits(self.limits)
        _validate_channels(self)
        _validate_core(self)

    def channel_limits_for(self, channel: str) -> StoreLimits:
        """The limits of ``channel``: the global ones, overridden by each matching
        per-channel entry from the widest to the most specific (§3.1)."""
        names = [name for name in self.channel_limits if _pattern_matches(name, channel)]
        result = dataclasses.replace(self.limits)
        for name in sorted(names, key=_specificity):
            for attr, value in dataclasses.asdict(self.channel_limits[name]).items():
                if value is not None:
                    setattr(result, attr, value)
        return result


@dataclass(frozen=True)
class Param:
    """One row of the table: a flag, a configuration key, or both."""

    flags: tuple[str, ...]     # names without dashes; Go accepts -name and --name alike
    kind: str                  # string int bool size duration seconds list hostport map
    default: Any
    fields: tuple[str, ...]    # Options attributes it sets ("limits.max_msgs"); several
    keys: tuple[str, ...]      # lower-case keys in its file section
    section: str               # core auth nats_tls nats_cluster streaming limits cluster ...
    group: str                 # the usage() heading
    help: str
    supported: bool


Y, N = True, False


def _rows(group: str, section: str, *specs: tuple) -> list[Param]:
    """Rows from ``(supported, flags, kind, default, fields, keys, help[, section])``."""
    rows = []
    for supported, flags, kind, default, fields, keys, help_text, *own in specs:
        rows.append(Param(tuple(flags.split()), kind, default, tuple(fields.split()),
                          tuple(keys.split()), own[0] if own else section, group, help_text,
                          supported))
    return rows


PARAMS: tuple[Param, ...] = (
    *_rows(G_STAN, "streaming",
          (Y, "cid cluster_id", "string", "test-cluster", "cluster_id",
           "id cid cluster_id", "Cluster ID"),
          (Y, "st store", "string", "MEMORY", "store_type",
           "store st store_type storetype", "Store type: MEMORY|FILE"),
          (Y, "dir", "string", "", "store_dir",
           "dir datastore", "Root directory of the FILE store"),
          (Y, "mc max_channels", "int", 100, "limits.max_channels",
           "max_channels maxchannels mc", "Max number of channels (0 for unlimited)", "limits"),
          (Y, "msu max_subs", "int", 1000, "limits.max_subs",
           "max_subs max_subscriptions maxsubscriptions msu",
           "Max number of subscriptions per channel (0 for unlimited)", "limits"),
          (Y, "mm max_msgs", "int", 1_000_000, "limits.max_msgs",
           "max_msgs maxmsgs max_count maxcount mm",
           "Max number of messages per channel (0 for unlimited)", "limits"),
          (Y, "mb max_bytes", "size", 1_024_000_000, "limits.max_bytes",
           "max_bytes maxbytes mb",
           "Max messages total size per channel (0 for unlimited)", "limits"),
          (Y, "ma max_age", "duration", 0.0, "limits.max_age_s",
           "max_age maxage ma",
           "Max duration a message can be stored (0 for unlimited)", "limits"),
          (Y, "mi max_inactivity", "duration", 0.0, "limits.max_inactivity_s",
           "max_inactivity maxinactivity mi",
           "Max inactivity before a channel is deleted (0 for never)", "limits"),
          (N, "ns nats_server", "string", "", "",
           "nats_server_url nats_server ns", "Connect to this external NATS server URL"),
          (Y, "sc stan_config", "string", "", "stan_config_file",
           "", "Streaming server configuration file"),
          (Y, "hbi hb_interval", "duration", 30.0, "hb_interval_s",
           "hb_interval hbi server_to_client_hb_interval",
           "Interval of heartbeats sent to clients"),
          (Y, "hbt hb_timeout", "duration", 10.0, "hb_timeout_s",
           "hb_timeout hbt server_to_client_hb_timeout", "How long to wait for a heartbeat reply"),
          (Y, "hbf hb_fail_count", "int", 10, "hb_fail_count",
           "hb_fail_count hbf server_to_client_hb_fail_count",
           "Failed heartbeats before a client is closed"),
          (N, "ft_group", "string", "", "",
           "ft_group ft_group_name", "Fault tolerance group name"),
          (N, "sl signal", "string", "", "",
           "", "Send a signal to a running server: stop|quit|reopen|reload"),
          (N, "encrypt", "bool", False, "", "encrypt", "Encrypt payloads at rest"),
          (N, "encryption_cipher", "string", "", "", "encryption_cipher", "AES or CHACHA"),
          (N, "encryption_key", "string", "", "", "encryption_key", "Encryption key"),
          (N, "replace_durable", "bool", False, "",
           "replace_durable replace_durables replace_duplicate_durable replace_duplicate_durables",
           "Replace an online duplicate durable"),
          (N, "io_batch_size", "int", 1024, "", "", "Max messages per IO batch"),
          (N, "io_sleep_time", "int", 0, "", "", "Microseconds to wait for an IO batch to fill"),
          (N, "", "string", "_STAN.discover", "", "discover_prefix", "Discover subject prefix"),
          (N, "", "string", "", "", "credentials", "NATS credentials file"),
          (N, "", "string", "", "", "username user", "User of the connections to NATS"),
          (N, "", "string", "", "", "password pass", "Password of the connections to NATS"),
          (N, "", "string", "", "", "token", "Token of the connections to NATS"),
          (N, "", "string", "", "", "nkey_seed_file", "NKey seed file"),
          (N, "", "bool", False, "", "partitioning", "Channels partitioning")),
    *_rows(G_CLUSTER, "cluster",
          (Y, "clustered", "bool", False, "clustered",
           "", "Run in clustered mode (a cluster { } section implies it)"),
          (Y, "cluster_node_id", "string", "", "cluster_node_id",
           "node_id", "ID of this node in the cluster"),
          (N, "cluster_bootstrap", "bool", False, "",
           "bootstrap", "Bootstrap the cluster as a seed node"),
          (Y, "cluster_peers", "list", (), "cluster_peers",
           "peers", "Node IDs of the cluster peers, comma separated"),
          (Y, "cluster_log_path", "string", "", "cluster_log_path",
           "log_path", "Directory of the Raft log and snapshots"),
          (N, "cluster_log_cache_size", "int", 512, "",
           "log_cache_size", "Raft log entries cached in memory"),
          (N, "cluster_log_snapshots", "int", 2, "", "log_snapshots", "Raft snapshots retained"),
          (N, "cluster_trailing_logs", "int", 10240, "",
           "trailing_logs", "Raft log entries kept after a snapshot"),
          (Y, "cluster_sync", "bool", True, "cluster_sync",
           "sync", "fsync the Raft log and the store before replying"),
          (N, "cluster_raft_logging", "bool", False, "", "raft_logging", "Log Raft internals"),
          (N, "cluster_allow_add_remove_node", "bool", False, "",
           "allow_add_remove_node", "Accept node add/remove requests"),
          (N, "cluster_proceed_on_restore_failure", "bool", False, "",
           "proceed_on_restore_failure", "Start even if a snapshot restore fails"),
          (N, "", "duration", 2.0, "", "raft_heartbeat_timeout", ""),
          (N, "", "duration", 2.0, "", "raft_election_timeout", ""),
          (N, "", "duration", 1.0, "", "raft_lease_timeout", ""),
          (N, "", "duration", 0.1, "", "raft_commit_timeout", ""),
          (N, "", "bool", False, "",
           "bolt_free_list_sync bolt_free_list_map nodes_connections", "")),
    *_rows(G_FILE, "file",
          (N, "file_compact_enabled", "bool", True, "", "compact compact_enabled", ""),
          (N, "file_compact_frag", "int", 50, "", "compact_frag compact_fragmentation", ""),
          (N, "file_compact_interval", "int", 300, "", "compact_interval", ""),
          (N, "file_compact_min_size", "size", MiB, "", "compact_min_size", ""),
          (N, "file_buffer_size", "size", 2 * MiB, "", "buffer_size", ""),
          (N, "file_crc", "bool", True, "", "crc do_crc", ""),
          (N, "file_crc_poly", "int", 3988292384, "", "crc_poly", ""),
          (Y, "file_sync", "bool", True, "file_sync",
           "sync do_sync sync_on_flush", "fsync the store before replying"),
          (N, "file_slice_max_msgs", "int", 0, "",
           "slice_max_msgs slice_max_count slice_msgs slice_count", ""),
          (N, "file_slice_max_bytes", "size", 64 * MiB, "",
           "slice_max_bytes slice_max_size slice_bytes slice_size", ""),
          (N, "file_slice_max_age", "duration", 0.0, "",
           "slice_max_age slice_age slice_max_time slice_time_limit", ""),
          (N, "file_slice_archive_script", "string", "", "",
           "slice_archive_script slice_archive slice_script", ""),
          (N, "file_fds_limit", "int", 0, "", "file_descriptors_limit fds_limit", ""),
          (N, "file_parallel_recovery", "int", 1, "", "parallel_recovery", ""),
          (N, "file_truncate_bad_eof", "bool", False, "", "", ""),
          (N, "file_read_buffer_size", "size", 2 * MiB, "",
           "read_buffer_size file_read_buffer_size", ""),
          (N, "file_auto_sync", "duration", 60.0, "", "auto_sync file_auto_sync", "")),
    *_rows(G_SQL, "sql",
          (N, "sql_driver", "string", "", "", "driver", ""),
          (N, "sql_source", "string", "", "", "source", ""),
          (N, "sql_no_caching", "bool", False, "", "no_caching", ""),
          (N, "sql_max_open_conns", "int", 0, "", "max_open_conns max_conns", ""),
          (N, "sql_bulk_insert_limit", "int", 0, "", "bulk_insert_limit", "")),
    *_rows(G_STAN_TLS, "stan_tls",
          (N, "secure", "bool", False, "", "secure", "", "streaming"),
          (N, "tls_client_cert", "string", "", "", "client_cert", ""),
          (N, "tls_client_key", "string", "", "", "client_key", ""),
          (N, "tls_client_cacert", "string", "", "", "client_ca client_cacert", ""),
          (N, "", "string", "", "", "server_name server_hostname skip_verify insecure", "")),
    *_rows(G_STAN_LOG, "streaming",
          (Y, "SD stan_debug", "bool", False, "stan_debug",
           "sd stan_debug", "Enable streaming debug logging"),
          (Y, "SV stan_trace", "bool", False, "stan_trace",
           "sv stan_trace", "Enable streaming trace logging"),
          (Y, "SDV", "bool", None, "stan_debug stan_trace",
           "", "Enable both streaming debug and trace logging"),
          (N, "syslog_name", "string", "", "", "syslog_name", "")),
    *_rows(G_NATS, "core",
          (Y, "a addr net", "string", "0.0.0.0", "host", "host net", "Bind to host address"),
          (Y, "p port", "int", 4222, "port", "port", "Use port for clients (-1 for random)"),
          (Y, "n name server_name", "string", "", "server_name", "server_name", "Server name"),
          (Y, "m http_port", "int", 0, "http_port",
           "http_port monitor_port", "Use port for HTTP monitoring (0 for off)"),
          (N, "ms https_port", "int", 0, "", "https https_port", "Use port for HTTPS monitoring"),
          (Y, "c config", "string", "", "config_file", "", "Configuration file"),
          (Y, "P pid", "string", "", "pid_file",
           "pidfile pid_file", "File to store the process ID"),
          (Y, "", "hostport", None, "host port", "listen", ""),
          (Y, "", "hostport", None, "http_host http_port", "http", ""),
          (Y, "", "size", 1_048_576, "max_payload_bytes", "max_payload", ""),
          (Y, "", "size", 4096, "max_control_line_bytes", "max_control_line", ""),
          (Y, "", "size", 64 * MiB, "max_pending_bytes", "max_pending", ""),
          (Y, "", "int", 65_536, "max_connections", "max_connections max_conn", ""),
          (Y, "", "seconds", 120.0, "ping_interval_s", "ping_interval", ""),
          (Y, "", "int", 2, "ping_max", "ping_max", ""),
          (Y, "", "seconds", 10.0, "write_deadline_s", "write_deadline", ""),
          (N, "", "int", 0, "", "max_subscriptions", ""),
          (N, "", "map", None, "", "accounts jetstream leafnodes gateway websocket mqtt", "")),
    *_rows(G_LOG, "core",
          (Y, "l log", "string", "", "log_file",
           "logfile log_file", "File to redirect log output"),
          (N, "T logtime", "bool", True, "", "logtime", "Timestamp log entries"),
          (N, "s syslog", "bool", False, "", "syslog", "Log to syslog"),
          (N, "r remote_syslog", "string", "", "", "remote_syslog", "Syslog server address"),
          (Y, "D debug", "bool", False, "debug", "debug", "Enable debugging output"),
          (Y, "V trace", "bool", False, "trace", "trace", "Trace the raw protocol"),
          (Y, "DV", "bool", None, "debug trace", "", "Debug and trace")),
    *_rows(G_AUTH, "auth",
          (Y, "user", "string", "", "user", "user username", "User required for connections"),
          (Y, "pass", "string", "", "password",
           "password pass", "Password required for connections"),
          (Y, "auth", "string", "", "token",
           "token", "Authorization token required for connections"),
          (Y, "", "seconds", 2.0, "auth_timeout_s", "timeout", ""),
          (N, "", "map", None, "", "users", "")),
    *_rows(G_TLS, "nats_tls",
          (N, "tls", "bool", False, "", "", "Enable TLS"),
          (N, "tlscert", "string", "", "", "cert_file", ""),
          (N, "tlskey", "string", "", "", "key_file", ""),
          (N, "tlsverify", "bool", False, "", "verify", ""),
          (N, "tlscacert", "string", "", "", "ca_file", "")),
    *_rows(G_ROUTES, "nats_cluster",
          (Y, "routes", "list", (), "routes",
           "routes", "Routes to solicit and connect, comma separated"),
          (Y, "cluster cluster_listen", "string", "", "cluster_listen",
           "listen", "Cluster URL for solicited routes"),
          (N, "cluster_name", "string", "", "", "name", "Cluster name"),
          (N, "", "string", "", "", "host port advertise", "")),
    *_rows(G_COMMON, "core",
          (Y, "h help", "bool", False, "show_help", "", "Show this message"),
          (Y, "v version", "bool", False, "show_version", "", "Show version"),
          (N, "help_tls", "bool", False, "", "", "TLS help")),
)

FLAG_PARAMS = tuple(row for row in PARAMS if row.flags)
_BY_KEY = {(row.section, key): row for row in PARAMS for key in row.keys}
_CHANNELS = "channels"
# Maps inside a section: file key -> section (``channels`` is handled on its own).
_SUBSECTIONS = {
    "core": {"authorization": "auth", "cluster": "nats_cluster", "tls": "nats_tls"},
    "streaming": {"store_limits": "limits", "limits": "limits", "storelimits": "limits",
                  "file_options": "file", "file": "file", "sql_options": "sql", "sql": "sql",
                  "cluster": "cluster", "tls": "stan_tls"},
    "limits": {name: _CHANNELS for name in ("channels", "channels_limits", "channelslimits",
                                            "per_channel", "per_channel_limits")},
}
_NORMALIZE = {"store_type": str.upper}


# ---------------------------------------------------------------------------
# Loading.

def load_options(argv: list[str], env: Mapping[str, str] | None = None) -> Options:
    """Options from defaults, then the configuration file(s), then the flags in ``argv``.

    ``env`` resolves ``$VAR`` in the files (default: the process environment).
    """
    given, rest = parse_args(argv, FLAG_PARAMS)
    if rest:
        raise ConfigError(f"unexpected argument {rest[0]!r}: flags come first, and a boolean "
                          f"flag takes its value as -flag=false")
    named = {name: flag.value for flag in given for name in flag.spec.fields}
    opts = Options()
    _apply_files(opts, named.get("config_file", ""), named.get("stan_config_file", ""), env)
    for flag in given:
        _assign(opts, flag.spec, flag.value)
    if not (opts.show_help or opts.show_version):
        opts.validate()
    return opts


def _apply_files(opts: Options, nats_file: str, stan_file: str, env) -> None:
    """``-c`` configures NATS, ``-sc`` streaming; a single one of them configures both."""
    nats_file, stan_file = nats_file or stan_file, stan_file or nats_file
    if not nats_file:
        return
    nats_doc = parse_file(nats_file, env)
    stan_doc = nats_doc if stan_file == nats_file else parse_file(stan_file, env)
    apply_config(opts, nats_doc, "core")
    apply_config(opts, _streaming_map(stan_doc), "streaming")


def _streaming_map(doc: Mapping) -> Mapping:
    """The ``streaming { }`` (or ``stan { }``) map when there is one, else the whole file."""
    for key, value in doc.items():
        if key.lower() in ("streaming", "stan"):
            return _expect_map(key, value, _where(doc, key))
    return doc


def apply_config(opts: Options, conf: Mapping, section: str) -> None:
    """Set ``opts`` from the map ``conf`` read as ``section`` of the table.

    Keys are matched case-insensitively. Unknown keys are tolerated (nats-server shares the
    file); a known key that Runnel does not support yet is refused.
    """
    for key, value in conf.items():
        name, where = key.lower(), _where(conf, key)
        sub = _SUBSECTIONS.get(section, {}).get(name)
        if sub == _CHANNELS:
            _apply_channels(opts, _expect_map(key, value, where))
        elif sub:
            apply_config(opts, _expect_map(key, value, where), sub)
            opts.clustered = opts.clustered or sub == "cluster"
        elif (section, name) in _BY_KEY:
            row = _BY_KEY[(section, name)]
            if not row.supported:
                raise ConfigError(f'parameter "{key}" is not supported by Runnel yet', *where)
            _assign(opts, row, file_value(row.kind, key, value, where))


def _apply_channels(opts: Options, conf: Mapping) -> None:
    """``store_limits.channels``: channel name (case kept) -> limit overrides."""
    for channel, entry in conf.items():
        where = _where(conf, channel)
        limits = ChannelLimits()
        entry = _expect_map(channel, entry, where)
        for key, value in entry.items():
            row = _BY_KEY.get(("limits", key.lower()))
            if row is None or row.fields == ("limits.max_channels",):
                continue
            attr = row.fields[0].split(".", 1)[1]
            setattr(limits, attr, file_value(row.kind, key, value, _where(entry, key)))
        opts.channel_limits[channel] = limits


def _assign(opts: Options, row: Param, value: Any) -> None:
    if row.kind == "hostport":
        host, port = value
        if host:
            setattr(opts, row.fields[0], host)
        setattr(opts, row.fields[1], port)
        return
    for path in row.fields:
        *parents, attr = path.split(".")
        target = opts
        for parent in parents:
            target = getattr(target, parent)
        value = _NORMALIZE[attr](value) if attr in _NORMALIZE else value
        setattr(target, attr, list(value) if isinstance(value, (list, tuple)) else value)


def _expect_map(key: str, value: Any, where: tuple) -> Mapping:
    return file_value("map", key, value, where)


def _where(conf: Mapping, key: str) -> tuple:
    return getattr(conf, "where", {}).get(key, (None, None))


# ---------------------------------------------------------------------------
# Validation (cross-field rules).

def _validate_store(opts: Options) -> None:
    if opts.store_type == "SQL":
        raise ConfigError("the SQL store is not supported by Runnel yet (use MEMORY or FILE)")
    if opts.store_type not in ("MEMORY", "FILE"):
        raise ConfigError(f'unsupported store type: "{opts.store_type}" (use MEMORY or FILE)')
    if opts.store_type == "FILE" and not opts.store_dir:
        raise ConfigError("for FILE stores, root directory must be specified")
    if opts.clustered and opts.store_type == "MEMORY":
        raise ConfigError("stan: clustering mode not supported with MEMORY store type")


_LIMIT_NAMES = {"max_channels": "max channels", "max_subs": "max subscriptions",
                "max_msgs": "max messages", "max_bytes": "max bytes", "max_age_s": "max age",
                "max_inactivity_s": "max inactivity"}


def _validate_limits(limits: StoreLimits | ChannelLimits, channel: str = "") -> None:
    for attr, value in dataclasses.asdict(limits).items():
        if value is not None and value < 0:
            shown = format_duration(value) if attr.endswith("_s") else value
            where = f'channel "{channel}": ' if channel else ""
            raise ConfigError(f"{where}{_LIMIT_NAMES[attr]} limit cannot be negative ({shown})")


def _validate_channels(opts: Options) -> None:
    for name, limits in opts.channel_limits.items():
        if not is_channel_pattern_valid(name):
            raise ConfigError(f'invalid channel name "{name}"')
        _validate_limits(limits, name)
    literal = sum(1 for name in opts.channel_limits if _is_literal(name))
    if opts.limits.max_channels and literal > opts.limits.max_channels:
        raise ConfigError(f"too many channels defined ({literal}). The max channels limit "
                          f"is set to {opts.limits.max_channels}")


def _validate_core(opts: Options) -> None:
    for name in ("port", "http_port"):
        if not -1 <= getattr(opts, name) <= 65535:
            raise ConfigError(f"invalid {name} {getattr(opts, name)} (-1 to 65535)")
    for name in ("max_payload_bytes", "max_control_line_bytes", "max_pending_bytes",
                 "max_connections", "ping_interval_s", "ping_max", "write_deadline_s",
                 "auth_timeout_s", "hb_interval_s", "hb_timeout_s", "hb_fail_count"):
        if getattr(opts, name) < 0:
            raise ConfigError(f"{name} cannot be negative ({getattr(opts, name)})")
    if opts.max_payload_bytes > opts.max_pending_bytes:
        raise ConfigError(f"max_payload ({opts.max_payload_bytes}) cannot be higher than "
                          f"max_pending ({opts.max_pending_bytes})")
    if opts.token and opts.user:
        raise ConfigError("token and user authentication cannot be used together")
    if opts.password and not opts.user:
        raise ConfigError("a password needs a user")


# ---------------------------------------------------------------------------
# Channel patterns of the per-channel limits (§2.17).

def is_channel_pattern_valid(name: str) -> bool:
    """Non-empty tokens, no ``/`` or whitespace; ``*`` and ``>`` whole tokens, ``>`` last."""
    if not name or "/" in name or any(char.isspace() for char in name):
        return False
    tokens = name.split(".")
    for index, token in enumerate(tokens):
        if not token or (token not in ("*", ">") and ("*" in token or ">" in token)):
            return False
        if token == ">" and index != len(tokens) - 1:
            return False
    return True


def _is_literal(name: str) -> bool:
    return all(token not in ("*", ">") for token in name.split("."))


def _pattern_matches(pattern: str, channel: str) -> bool:
    wanted, tokens = pattern.split("."), channel.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def _specificity(pattern: str) -> tuple[int, int, bool]:
    tokens = pattern.split(".")
    literal = sum(1 for token in tokens if token not in ("*", ">"))
    return literal, len(tokens), tokens[-1] != ">"


# ---------------------------------------------------------------------------
# Help.

def usage(program: str = "runnel") -> str:
    """The supported flags grouped like nats-streaming-server's help, then the others."""
    lines = [f"Usage: {program} [options]"]
    for group in dict.fromkeys(row.group for row in FLAG_PARAMS):
        rows = [row for row in FLAG_PARAMS if row.group == group and row.supported]
        if rows:
            lines += ["", f"{group}:"] + [_usage_line(row) for row in rows]
    pending = ", ".join(_flag_names(row) for row in FLAG_PARAMS if not row.supported)
    lines += ["", "Known but not supported by Runnel yet:"]
    lines += textwrap.wrap(pending, 88, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def _flag_names(row: Param) -> str:
    """Short names (up to 3 letters, or upper-case) with one dash, as the reference shows them."""
    return ", ".join(("-" if len(name) <= 3 and (index == 0 < len(row.flags) - 1 or
                                                 not name.islower()) else "--") + name
                     for index, name in enumerate(row.flags))


def _usage_line(row: Param) -> str:
    left = _flag_names(row) + ("" if row.kind == "bool" else f" <{row.kind}>")
    text = row.help + _shown_default(row)
    return f"    {left:<38} {text}" if len(left) < 38 else f"    {left}\n    {'':<38} {text}"


def _shown_default(row: Param) -> str:
    if row.default in (None, "", 0, 0.0, False, ()) and row.kind != "int":
        return ""
    if row.kind in ("duration", "seconds"):
        return f" (default: {format_duration(row.default)})"
    return f" (default: {str(row.default).lower() if row.kind == 'bool' else row.default})"
