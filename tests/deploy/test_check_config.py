"""`runnel serve --check-config`: options loaded exactly as `serve` loads them, validated,
plus the cluster start-up checks that need no network; "configuration OK" and status 0, or
the error and status 2; nothing is served, opened or written."""
from __future__ import annotations

import subprocess
import sys

import pytest

from broker.cli import serve_main
from tests.deploy.layout import REPO

PEERS = "--cluster_peers=a@h1:6222,b@h2:6222,c@h3:6222"
CLUSTER = ["-st", "file", "--clustered", PEERS]


def check(capsys, *args: str) -> tuple[int, str, str]:
    code = serve_main([*args, "--check-config"])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_options_print_configuration_ok(capsys, tmp_path):
    assert check(capsys) == (0, "configuration OK\n", "")
    code, out, _ = check(capsys, "-dir", str(tmp_path / "d"), *CLUSTER, "--cluster_node_id=b")
    assert (code, out) == (0, "configuration OK\n")


@pytest.mark.parametrize("args, message", [
    (["-p", "x"], 'invalid value "x" for flag -p: parse error'),
    (["--no_such_flag"], "flag provided but not defined: -no_such_flag"),
    (["-st", "file"], "for FILE stores, root directory must be specified"),
    (["--clustered"], "clustering mode not supported with MEMORY store type"),
    (["-dir", "/d", *CLUSTER, "--cluster_node_id=d"],
     "--cluster_peers must list this node as d@host:port"),
    (["-dir", "/d", *CLUSTER], "--cluster_peers must list this node as <id>@host:port"),
    (["-dir", "/d", "-st", "file", "--clustered", "--cluster_node_id=a",
      "--cluster_peers=a@h1:6222,b@h2"], "bad --cluster_peers entry 'b@h2'"),
    (["-dir", "/d", "-st", "file", "--clustered", "--cluster_node_id=a",
      "--cluster_peers=a@h1:6222,a@h2:6222"], "duplicate node ID 'a'"),
])
def test_errors_exit_2_with_the_message(capsys, args, message):
    code, out, err = check(capsys, *args)
    assert (code, out) == (2, "")
    assert message in err and err.startswith("runnel: ")


def test_the_flag_may_stand_anywhere_and_in_go_syntax(capsys):
    for argv in (["--check-config", "-p", "4333"], ["-check-config=true", "-p", "4333"],
                 ["-p", "4333", "-check-config"]):
        assert serve_main(argv) == 0
        assert capsys.readouterr().out == "configuration OK\n"


def test_nothing_is_served_or_written(tmp_path):
    """A subprocess, so a node that started serving would hang (and fail the timeout)."""
    data, pid = tmp_path / "data", tmp_path / "runnel.pid"
    proc = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "-p", "-1", "-m", "-1", "-st", "file",
         "-dir", str(data), "-P", str(pid), "--clustered", "--cluster_node_id=a",
         PEERS, "--check-config"],
        cwd=REPO, capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout) == (0, "configuration OK\n"), proc.stderr
    assert not data.exists() and not pid.exists()


def test_a_configuration_file_is_read_as_serve_reads_it(tmp_path):
    conf = tmp_path / "runnel.conf"
    conf.write_text('streaming { store: file, dir: "/data", cluster { node_id: $NODE, '
                    'peers: ["a@h1:6222", "b@h2:6222"] } }\n')
    run = lambda node: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "broker", "serve", "-c", str(conf), "--check-config"],
        cwd=REPO, capture_output=True, text=True, timeout=30, env={"NODE": node, "PATH": ""})
    assert run("b").stdout == "configuration OK\n"
    refused = run("z")
    assert refused.returncode == 2 and "must list this node as z@host:port" in refused.stderr


def test_help_lists_the_option(capsys):
    assert serve_main(["-h"]) == 0
    assert "--check-config" in capsys.readouterr().out
