"""Options: the table, precedence defaults < file < flags, validation, usage."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from broker.config import ChannelLimits, ConfigError, Options, StoreLimits, load_options, usage
from broker.config.options import FLAG_PARAMS, PARAMS

REFERENCE_EXAMPLE = """\
port: 4222
http: 8222
streaming {
  id: mycluster
  store: file
  dir: /data/stan
  hb_interval: "10s"
  store_limits {
    max_channels: 10
    max_msgs: 10000
    channels { "foo.>": { max_msgs: 400 }, "temp.>": { max_inactivity: "1h" } }
  }
  cluster { node_id: "a", peers: ["b","c"] }
}
"""

# Every flag of reference §4.2 and §4.3, as the reference lists them.
REFERENCE_FLAGS = """
cid cluster_id st store dir mc max_channels msu max_subs mm max_msgs mb max_bytes ma max_age
mi max_inactivity ns nats_server sc stan_config hbi hb_interval hbt hb_timeout hbf
hb_fail_count ft_group sl signal encrypt encryption_cipher encryption_key replace_durable SD
stan_debug SV stan_trace SDV syslog_name secure tls_client_cert tls_client_key
tls_client_cacert io_batch_size io_sleep_time clustered cluster_node_id cluster_bootstrap
cluster_peers cluster_log_path cluster_log_cache_size cluster_log_snapshots
cluster_trailing_logs cluster_sync cluster_raft_logging cluster_allow_add_remove_node
cluster_proceed_on_restore_failure file_compact_enabled file_compact_frag
file_compact_interval file_compact_min_size file_buffer_size file_crc file_crc_poly file_sync
file_slice_max_msgs file_slice_max_bytes file_slice_max_age file_slice_archive_script
file_fds_limit file_parallel_recovery file_truncate_bad_eof file_read_buffer_size
file_auto_sync sql_driver sql_source sql_no_caching sql_max_open_conns sql_bulk_insert_limit
a addr net p port n name server_name m http_port ms https_port c config P pid l log T logtime
s syslog r remote_syslog D debug V trace DV user pass auth tls tlscert tlskey tlsverify
tlscacert routes cluster cluster_listen cluster_name h help v version help_tls
""".split()

SUPPORTED_FLAGS = """
p port a addr net m http_port n name server_name cid cluster_id st store dir SD stan_debug
SV stan_trace SDV D debug V trace DV l log P pid user pass auth c config sc stan_config mc
max_channels msu max_subs mm max_msgs mb max_bytes ma max_age mi max_inactivity hbi
hb_interval hbt hb_timeout hbf hb_fail_count file_sync h help v version clustered
cluster_node_id cluster_peers cluster_log_path cluster_sync routes cluster cluster_listen
""".split()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load(*argv: str, **env: str) -> Options:
    return load_options(list(argv), env=env)


def refused(*argv: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_options(list(argv), env=env)
    return str(info.value)


# -- the table ----------------------------------------------------------------------

def test_every_reference_flag_is_in_the_table_and_nothing_else():
    names = [name for row in FLAG_PARAMS for name in row.flags]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(REFERENCE_FLAGS)


def test_exactly_the_briefed_flags_are_supported():
    supported = {name for row in FLAG_PARAMS if row.supported for name in row.flags}
    assert supported == set(SUPPORTED_FLAGS)


def test_file_keys_are_unique_per_section_and_lower_case():
    seen = set()
    for row in PARAMS:
        for key in row.keys:
            assert key == key.lower()
            assert (row.section, key) not in seen
            seen.add((row.section, key))


def test_supported_rows_set_fields_and_unsupported_rows_none():
    known = {f.name for f in dataclasses.fields(Options)}
    known |= {f"limits.{f.name}" for f in dataclasses.fields(StoreLimits)}
    for row in PARAMS:
        assert bool(row.fields) == row.supported, row
        assert set(row.fields) <= known, row


def test_table_defaults_equal_the_dataclass_defaults():
    opts = Options()
    for row in PARAMS:
        if row.supported and len(row.fields) == 1:
            value = opts
            for part in row.fields[0].split("."):
                value = getattr(value, part)
            expected = list(row.default) if isinstance(row.default, tuple) else row.default
            assert value == expected, row


def test_defaults():
    opts = load()
    assert opts == Options()
    assert (opts.host, opts.port, opts.http_port, opts.cluster_id) == ("0.0.0.0", 4222, 0,
                                                                       "test-cluster")
    assert (opts.store_type, opts.store_dir, opts.file_sync, opts.cluster_sync) == (
        "MEMORY", "", True, True)
    assert opts.limits == StoreLimits(100, 1000, 1_000_000, 1_024_000_000, 0.0, 0.0)
    assert (opts.hb_interval_s, opts.hb_timeout_s, opts.hb_fail_count) == (30.0, 10.0, 10)
    assert (opts.max_payload_bytes, opts.max_control_line_bytes, opts.max_pending_bytes,
            opts.max_connections) == (1_048_576, 4096, 64 << 20, 65_536)
    assert (opts.ping_interval_s, opts.ping_max, opts.write_deadline_s,
            opts.auth_timeout_s) == (120.0, 2, 10.0, 2.0)


# -- flags ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, field, value", [
    (["-p", "4333"], "port", 4333), (["--port=-1"], "port", -1),
    (["-a", "127.0.0.1"], "host", "127.0.0.1"), (["--net", "::1"], "host", "::1"),
    (["--addr=10.0.0.1"], "host", "10.0.0.1"), (["-m", "8222"], "http_port", 8222),
    (["--http_port=8222"], "http_port", 8222), (["-n", "n1"], "server_name", "n1"),
    (["--server_name", "n1"], "server_name", "n1"), (["-cid", "c"], "cluster_id", "c"),
    (["--cluster_id=c"], "cluster_id", "c"), (["-l", "x.log"], "log_file", "x.log"),
    (["-P", "x.pid"], "pid_file", "x.pid"), (["--user", "u", "--pass", "p"], "password", "p"),
    (["--auth", "tok"], "token", "tok"), (["-hbi", "1s"], "hb_interval_s", 1.0),
    (["-hbt", "500ms"], "hb_timeout_s", 0.5), (["-hbf", "3"], "hb_fail_count", 3),
    (["--file_sync=false"], "file_sync", False), (["--cluster_sync=false"], "cluster_sync", False),
    (["--routes", "nats://a:6222,nats://b:6222"], "routes", ["nats://a:6222", "nats://b:6222"]),
    (["--cluster", "nats://0.0.0.0:6222"], "cluster_listen", "nats://0.0.0.0:6222"),
    (["--cluster_listen=nats://h:1"], "cluster_listen", "nats://h:1"),
    (["--cluster_node_id", "a"], "cluster_node_id", "a"),
    (["--cluster_peers", "a,b,c"], "cluster_peers", ["a", "b", "c"]),
    (["--cluster_log_path", "/raft"], "cluster_log_path", "/raft"),
    (["-h"], "show_help", True), (["--version"], "show_version", True),
    (["-D"], "debug", True), (["-V"], "trace", True), (["-SD"], "stan_debug", True),
    (["--stan_trace"], "stan_trace", True),
])
def test_flags_set_their_field(argv, field, value):
    assert getattr(load(*argv), field) == value


@pytest.mark.parametrize("argv, attr, value", [
    (["-mc", "5"], "max_channels", 5), (["--max_subs=7"], "max_subs", 7),
    (["-mm", "10"], "max_msgs", 10), (["-mb", "1GB"], "max_bytes", 1 << 30),
    (["-mb", "1G"], "max_bytes", 10**9), (["-mb", "2048"], "max_bytes", 2048),
    (["-ma", "1h30m"], "max_age_s", 5400.0), (["--max_inactivity", "1.5h"], "max_inactivity_s",
                                              5400.0)])
def test_limit_flags(argv, attr, value):
    assert getattr(load(*argv).limits, attr) == value


def test_combined_debug_flags():
    assert (load("-SDV").stan_debug, load("-SDV").stan_trace) == (True, True)
    assert (load("-DV").debug, load("-DV").trace) == (True, True)
    opts = load("-SDV", "-SD=false")
    assert (opts.stan_debug, opts.stan_trace) == (False, True)
    opts = load("-DV", "-DV=false")
    assert (opts.debug, opts.trace) == (False, False)


def test_store_is_case_insensitive_and_stored_upper_case(tmp_path):
    assert load("-st", "memory").store_type == "MEMORY"
    assert load("--store=file", "--dir", str(tmp_path)).store_type == "FILE"
    assert load("-st", "File", "-dir", str(tmp_path)).store_dir == str(tmp_path)


def test_store_refusals():
    assert refused("-st", "FILE") == "for FILE stores, root directory must be specified"
    assert "SQL store is not supported by Runnel yet" in refused("-st", "sql")
    assert 'unsupported store type: "BOGUS"' in refused("-st", "bogus")


def test_unknown_and_unsupported_flags():
    assert refused("-xyz") == "flag provided but not defined: -xyz"
    assert refused("--encrypt") == "flag -encrypt is not supported by Runnel yet"
    assert refused("-ns", "nats://x") == "flag -ns is not supported by Runnel yet"
    assert refused("--cluster_bootstrap") == ("flag -cluster_bootstrap is not supported by "
                                              "Runnel yet")
    assert refused("-p", "abc") == 'invalid value "abc" for flag -p: parse error'


def test_a_boolean_followed_by_false_is_refused_with_a_hint():
    message = refused("--file_sync", "false")
    assert "'false'" in message and "-flag=false" in message


def test_help_skips_validation():
    assert load("-st", "FILE", "-h").show_help


# -- configuration file ----------------------------------------------------------------

def test_reference_example_through_load_options(tmp_path):
    path = write(tmp_path, "stan.conf", REFERENCE_EXAMPLE)
    opts = load("-sc", path)
    assert (opts.port, opts.http_port, opts.cluster_id) == (4222, 8222, "mycluster")
    assert (opts.store_type, opts.store_dir, opts.hb_interval_s) == ("FILE", "/data/stan", 10.0)
    assert (opts.limits.max_channels, opts.limits.max_msgs) == (10, 10_000)
    assert opts.channel_limits == {"foo.>": ChannelLimits(max_msgs=400),
                                   "temp.>": ChannelLimits(max_inactivity_s=3600.0)}
    assert (opts.clustered, opts.cluster_node_id, opts.cluster_peers) == (True, "a", ["b", "c"])


def test_core_keys(tmp_path):
    path = write(tmp_path, "n.conf", """
        listen: "127.0.0.1:5222"
        http: "127.0.0.1:8333"
        server_name: n1
        max_payload: 2MB
        max_control_line: 8KB
        max_pending: 128MB
        max_connections: 10
        ping_interval: "30s"
        ping_max: 5
        write_deadline: 3
        debug: true
        logfile: "/tmp/x.log"
        pid_file: "/tmp/x.pid"
        authorization { user: u, password: p, timeout: 0.5 }
        cluster { listen: "0.0.0.0:6222", routes: ["nats://a:6222", "nats://b:6222"] }
        streaming { }
    """)
    opts = load("-c", path)
    assert (opts.host, opts.port, opts.http_host, opts.http_port) == ("127.0.0.1", 5222,
                                                                      "127.0.0.1", 8333)
    assert (opts.server_name, opts.max_payload_bytes, opts.max_control_line_bytes) == (
        "n1", 2 << 20, 8192)
    assert (opts.max_pending_bytes, opts.max_connections, opts.ping_interval_s) == (
        128 << 20, 10, 30.0)
    assert (opts.ping_max, opts.write_deadline_s, opts.debug) == (5, 3.0, True)
    assert (opts.log_file, opts.pid_file) == ("/tmp/x.log", "/tmp/x.pid")
    assert (opts.user, opts.password, opts.auth_timeout_s) == ("u", "p", 0.5)
    assert opts.cluster_listen == "0.0.0.0:6222"
    assert opts.routes == ["nats://a:6222", "nats://b:6222"]


def test_port_http_and_host_keys(tmp_path):
    opts = load("-c", write(tmp_path, "a.conf", "port: 1234\nhttp_port: 8000\nhost: 10.1.1.1"))
    assert (opts.port, opts.http_port, opts.host) == (1234, 8000, "10.1.1.1")
    opts = load("-c", write(tmp_path, "b.conf", "monitor_port: 9000\nnet: 10.2.2.2\nhttp: 7000"))
    assert (opts.http_port, opts.host) == (7000, "10.2.2.2")
    assert load("-c", write(tmp_path, "c.conf", "listen: 4999")).port == 4999


def test_keys_are_case_insensitive_but_channel_names_are_not(tmp_path):
    path = write(tmp_path, "s.conf", """
        PORT: 5000
        Streaming {
          ID: Abc
          Store_Limits { MAX_MSGS: 5, Channels { "Foo": { Max_Msgs: 1 }, "foo": { max_msgs: 2 } } }
        }
    """)
    opts = load("-c", path)
    assert (opts.port, opts.cluster_id, opts.limits.max_msgs) == (5000, "Abc", 5)
    assert opts.channel_limits == {"Foo": ChannelLimits(max_msgs=1),
                                   "foo": ChannelLimits(max_msgs=2)}


def test_streaming_keys_at_top_level(tmp_path):
    path = write(tmp_path, "s.conf", 'cid: top\nhbi: "5s"\nsd: true\nsv: true\n'
                                     'limits { mc: 3 }\nfile { sync_on_flush: false }\n')
    opts = load("-sc", path)
    assert (opts.cluster_id, opts.hb_interval_s, opts.stan_debug, opts.stan_trace) == (
        "top", 5.0, True, True)
    assert (opts.limits.max_channels, opts.file_sync) == (3, False)


def test_a_streaming_map_hides_top_level_streaming_keys(tmp_path):
    opts = load("-c", write(tmp_path, "s.conf", "id: top\nstreaming { hbf: 3 }\n"))
    assert (opts.cluster_id, opts.hb_fail_count) == ("test-cluster", 3)
    opts = load("-c", write(tmp_path, "t.conf", "stan { cluster_id: inner }\n"))
    assert opts.cluster_id == "inner"


def test_key_aliases(tmp_path):
    text = ("streaming { cluster_id: x, store_type: file, datastore: /d,"
            " server_to_client_hb_interval: \"2s\", server_to_client_hb_timeout: \"1s\","
            " server_to_client_hb_fail_count: 4,"
            " storelimits { maxchannels: 1, maxsubscriptions: 2, maxcount: 3, maxbytes: 4,"
            " maxage: \"5s\", maxinactivity: \"6s\","
            " per_channel_limits { a: { maxmsgs: 7 } } },"
            " file_options { do_sync: false } }")
    opts = load("-c", write(tmp_path, "a.conf", text))
    assert (opts.cluster_id, opts.store_type, opts.store_dir) == ("x", "FILE", "/d")
    assert (opts.hb_interval_s, opts.hb_timeout_s, opts.hb_fail_count) == (2.0, 1.0, 4)
    assert opts.limits == StoreLimits(1, 2, 3, 4, 5.0, 6.0)
    assert opts.channel_limits == {"a": ChannelLimits(max_msgs=7)}
    assert opts.file_sync is False


def test_unknown_keys_are_tolerated(tmp_path):
    path = write(tmp_path, "a.conf", "foo: 1\nstreaming { bar { baz: 2 } }\n"
                                     "authorization { xyz: 1 }")
    assert load("-c", path) == Options(config_file=path)


@pytest.mark.parametrize("text, key, line", [
    ("a: 1\nstreaming {\n  encrypt: true\n}", "encrypt", 3),
    ("file_options { compact: false }", "compact", 1),
    ("\ncluster { bootstrap: true }", "bootstrap", 2),
    ("tls { cert_file: x }", "cert_file", 1),
    ("ft_group: g", "ft_group", 1),
    ("partitioning: true", "partitioning", 1),
    ("jetstream { }", "jetstream", 1),
    ("sql_options { driver: mysql }", "driver", 1),
])
def test_known_unsupported_keys_are_refused_with_file_and_line(tmp_path, text, key, line):
    path = write(tmp_path, "u.conf", text)
    expected = f'{path}:{line}: parameter "{key}" is not supported by Runnel yet'
    assert refused("-c", path) == expected


@pytest.mark.parametrize("text, message", [
    ('streaming {\n  hb_interval: 10\n}', 'parameter "hb_interval" value is expected to be '
                                          'string, got int64'),
    ("store_limits { max_msgs: \"x\" }", 'parameter "max_msgs" value is expected to be int64, '
                                         'got string'),
    ("sd: 1", 'parameter "sd" value is expected to be bool, got int64'),
    ("port: \"4222\"", 'parameter "port" value is expected to be int64, got string'),
    ("store_limits: 5", 'parameter "store_limits" value is expected to be map, got int64'),
    ("cluster { peers: [1, 2] }", 'parameter "peers" value is expected to be slice of strings'),
    ('store_limits { channels { foo: { max_age: 5 } } }', 'parameter "max_age" value is '
                                                         'expected to be string, got int64'),
])
def test_type_mismatches(tmp_path, text, message):
    path = write(tmp_path, "m.conf", text)
    assert message in refused("-c", path)
    assert refused("-c", path).startswith(f"{path}:")


def test_type_mismatch_names_the_line(tmp_path):
    path = write(tmp_path, "m.conf", "port: 4222\n\nstreaming {\n  hbf: \"3\"\n}\n")
    assert refused("-c", path).startswith(f"{path}:4: ")


def test_ping_interval_forms(tmp_path):
    assert load("-c", write(tmp_path, "a.conf", 'ping_interval: "2m"')).ping_interval_s == 120
    assert load("-c", write(tmp_path, "b.conf", "ping_interval: 45")).ping_interval_s == 45
    message = refused("-c", write(tmp_path, "c.conf", "ping_interval: 2m"))
    assert 'read as the number 2000000; write a duration in quotes: "2m"' in message


def test_a_key_without_value_takes_the_zero_value(tmp_path):
    opts = load("-c", write(tmp_path, "z.conf", "hb_fail_count:\nid:\n"))
    assert (opts.hb_fail_count, opts.cluster_id) == (0, "")


def test_variables_and_include_through_load_options(tmp_path):
    write(tmp_path, "limits.conf", "store_limits { max_msgs: $MSGS }\n")
    path = write(tmp_path, "main.conf", "p: 4444\nport: $p\ninclude limits.conf\n")
    opts = load("-c", path, MSGS="77")
    assert (opts.port, opts.limits.max_msgs) == (4444, 77)


def test_missing_config_file():
    assert "cannot read configuration file" in refused("-c", "/nonexistent/x.conf")


# -- precedence -----------------------------------------------------------------------

def test_flag_beats_file_beats_default(tmp_path):
    path = write(tmp_path, "p.conf", 'port: 5000\nstreaming { hb_interval: "7s", '
                                     'store_limits { max_msgs: 9 } }')
    assert load().port == 4222
    opts = load("-c", path)
    assert (opts.port, opts.hb_interval_s, opts.limits.max_msgs) == (5000, 7.0, 9)
    opts = load("-p", "6000", "-c", path, "-hbi", "8s", "-mm", "10")
    assert (opts.port, opts.hb_interval_s, opts.limits.max_msgs) == (6000, 8.0, 10)


def test_flags_win_whatever_their_position(tmp_path):
    path = write(tmp_path, "p.conf", "port: 5000")
    assert load("-p", "6000", "-c", path).port == 6000
    assert load("-c", path, "-p", "6000").port == 6000


def test_clustered_flag_overrides_the_cluster_section(tmp_path, ):
    path = write(tmp_path, "c.conf", "streaming { store: file, dir: /d, cluster { sync: false } }")
    assert (load("-c", path).clustered, load("-c", path).cluster_sync) == (True, False)
    assert load("-c", path, "--clustered=false").clustered is False
    assert load("-c", path, "--cluster_sync").cluster_sync is True


def test_a_top_level_cluster_map_is_both_nats_routes_and_streaming_clustering(tmp_path):
    text = 'store: file\ndir: /d\ncluster { listen: "0.0.0.0:6222", node_id: a, peers: [b] }'
    opts = load("-c", write(tmp_path, "c.conf", text))
    assert (opts.clustered, opts.cluster_listen, opts.cluster_peers) == (True, "0.0.0.0:6222",
                                                                         ["b"])
    text = 'cluster { listen: "0.0.0.0:6222" }\nstreaming { }'
    opts = load("-c", write(tmp_path, "d.conf", text))
    assert (opts.clustered, opts.cluster_listen) == (False, "0.0.0.0:6222")


def test_c_and_sc_each_configure_their_own_side(tmp_path):
    nats = write(tmp_path, "nats.conf", "port: 1111\nid: from-nats\n")
    stan = write(tmp_path, "stan.conf", "port: 2222\nid: from-stan\n")
    opts = load("-c", nats, "-sc", stan)
    assert (opts.port, opts.cluster_id) == (1111, "from-stan")
    assert (opts.config_file, opts.stan_config_file) == (nats, stan)
    assert (load("-c", nats).port, load("-c", nats).cluster_id) == (1111, "from-nats")
    assert (load("-sc", stan).port, load("-sc", stan).cluster_id) == (2222, "from-stan")


# -- per-channel limits and validation -----------------------------------------------------

def test_per_channel_limits_with_zero_meaning_unlimited(tmp_path):
    path = write(tmp_path, "l.conf", """
        store_limits {
          max_msgs: 100, max_bytes: 1MB, max_age: "1h"
          channels {
            "foo.>": { max_msgs: 10, max_age: "1m" }
            "foo.bar.>": { max_bytes: 0 }
            "foo.bar.baz": { max_subs: 3, max_channels: 99 }
            "*.x": { max_inactivity: "30s" }
          }
        }
    """)
    opts = load("-sc", path)
    assert opts.channel_limits["foo.bar.baz"] == ChannelLimits(max_subs=3)
    assert opts.channel_limits_for("other") == opts.limits
    assert opts.channel_limits_for("foo.q") == StoreLimits(100, 1000, 10, 1 << 20, 60.0, 0.0)
    assert opts.channel_limits_for("foo.bar.q") == StoreLimits(100, 1000, 10, 0, 60.0, 0.0)
    assert opts.channel_limits_for("foo.bar.baz") == StoreLimits(100, 3, 10, 0, 60.0, 0.0)
    assert opts.channel_limits_for("foo.x").max_inactivity_s == 30.0
    assert opts.channel_limits_for("foo") == opts.limits


@pytest.mark.parametrize("name", ["foo..bar", ".foo", "foo.", "a/b", "fo*.x", "foo.>.bar",
                                  "a b", "x>", ""])
def test_invalid_channel_names_are_refused(name):
    opts = Options(channel_limits={name: ChannelLimits(max_msgs=1)})
    with pytest.raises(ConfigError) as info:
        opts.validate()
    assert str(info.value) == f'invalid channel name "{name}"'


def test_too_many_literal_channels(tmp_path):
    path = write(tmp_path, "l.conf", "store_limits { max_channels: 2, channels { "
                                     "a: {}, b: {}, c: {}, 'd.>': {} } }")
    assert refused("-c", path) == ("too many channels defined (3). The max channels limit is "
                                   "set to 2")
    assert load("-c", path, "-mc", "3").limits.max_channels == 3
    assert load("-c", path, "-mc", "0").limits.max_channels == 0


@pytest.mark.parametrize("argv, message", [
    (["-mc", "-1"], "max channels limit cannot be negative (-1)"),
    (["-msu", "-2"], "max subscriptions limit cannot be negative (-2)"),
    (["-mm", "-3"], "max messages limit cannot be negative (-3)"),
    (["-mb", "-4"], "max bytes limit cannot be negative (-4)"),
    (["-ma", "-1s"], "max age limit cannot be negative (-1s)"),
    (["-mi", "-1m"], "max inactivity limit cannot be negative (-1m0s)"),
    (["-p", "70000"], "invalid port 70000"),
    (["-m", "-2"], "invalid http_port -2"),
    (["-hbf", "-1"], "hb_fail_count cannot be negative"),
    (["-hbi", "-1s"], "hb_interval_s cannot be negative"),
    (["--user", "u", "--auth", "t"], "token and user authentication cannot be used together"),
    (["--pass", "p"], "a password needs a user"),
    (["--clustered"], "stan: clustering mode not supported with MEMORY store type"),
])
def test_validation_refusals(argv, message):
    assert message in refused(*argv)


def test_negative_per_channel_limit(tmp_path):
    path = write(tmp_path, "n.conf", "store_limits { channels { foo: { max_msgs: -1 } } }")
    assert refused("-c", path) == 'channel "foo": max messages limit cannot be negative (-1)'


def test_max_payload_above_max_pending(tmp_path):
    path = write(tmp_path, "p.conf", "max_payload: 2MB\nmax_pending: 1MB\n")
    assert "max_payload (2097152) cannot be higher than max_pending (1048576)" in refused(
        "-c", path)


def test_clustered_file_store(tmp_path):
    opts = load("--clustered", "-st", "FILE", "--dir", str(tmp_path), "--cluster_node_id", "a",
                "--cluster_peers", "a,b,c", "--routes", "nats://b:6222")
    assert (opts.clustered, opts.cluster_peers, opts.routes) == (True, ["a", "b", "c"],
                                                                 ["nats://b:6222"])


# -- usage ------------------------------------------------------------------------------

def test_usage_groups_and_flags():
    text = usage()
    assert text.startswith("Usage: runnel [options]\n")
    for heading in ("Streaming Server Options:", "Streaming Server Clustering Options:",
                    "NATS Server Options:", "Logging Options:", "Authorization Options:",
                    "NATS Clustering Options:", "Common Options:"):
        assert f"\n{heading}\n" in text
    for line in ("-p, --port <int>", "-cid, --cluster_id <string>", "--dir <string>", "-SDV",
                 "-mb, --max_bytes <size>", "-hbi, --hb_interval <duration>",
                 "--cluster_peers <list>", "--user <string>", "-h, --help"):
        assert line in text
    assert "(default: 4222)" in text and "(default: 30s)" in text
    supported, pending = text.split("Known but not supported by Runnel yet:")
    assert "--encrypt" in pending and "--encrypt" not in supported
    assert "--ft_group" in pending and "-ns, --nats_server" in pending
