"""Value formats of the monitoring JSON (reference §5.1): times, uptimes, durations, JSON."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from broker.monitor.formats import (encode_json, go_duration, rfc3339, to_ns, uptime,
                                    valid_callback)
from broker.monitor.procstats import CpuSampler, rss_bytes
from broker.monitor.provider import MonitorError
from broker.monitor.query import paging

# 2019-08-14T15:23:31.15467Z, the reference's example instant
EXAMPLE_NS = 1565796211_154670000


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.9, "0s"), (11, "11s"), (59, "59s"), (60, "1m0s"), (185, "3m5s"),
    (3600, "1h0m0s"), (3 * 3600 + 4, "3h0m4s"),
    (86400 + 2 * 3600 + 3 * 60 + 4, "1d2h3m4s"),
    (365 * 86400 + 2 * 86400 + 5, "1y2d0h0m5s"),
    (-3, "0s"),
])
def test_uptime_is_nats_server_compact_form(seconds, text):
    assert uptime(seconds) == text


def test_rfc3339_with_an_offset_matches_the_reference_example():
    mountain = timezone(timedelta(hours=-6))
    assert rfc3339(EXAMPLE_NS, mountain) == "2019-08-14T09:23:31.15467-06:00"


def test_rfc3339_utc_is_z_and_trims_fraction_zeros():
    assert rfc3339(EXAMPLE_NS, timezone.utc) == "2019-08-14T15:23:31.15467Z"
    assert rfc3339(1565796211_000000000, timezone.utc) == "2019-08-14T15:23:31Z"
    assert rfc3339(1565796211_000000001, timezone.utc) == "2019-08-14T15:23:31.000000001Z"
    assert rfc3339(0, timezone(timedelta(hours=5, minutes=30))) == "1970-01-01T05:30:00+05:30"


def test_rfc3339_defaults_to_the_local_zone():
    text = rfc3339(EXAMPLE_NS)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed.timestamp() == pytest.approx(EXAMPLE_NS / 1e9, abs=1e-6)
    local_offset = datetime.fromtimestamp(EXAMPLE_NS // 10**9).astimezone().utcoffset()
    assert parsed.utcoffset() == local_offset


def test_to_ns_keeps_microseconds():
    assert to_ns(1565796211.15467) == EXAMPLE_NS


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (999, "999ns"), (602_000, "602µs"), (1_500, "1.5µs"),
    (1_500_000, "1.5ms"), (1_234_567, "1.234567ms"), (1_000_000_000, "1s"),
    (123_250_000_000, "2m3.25s"), (3600 * 10**9, "1h0m0s"), (-2_000_000, "-2ms"),
])
def test_go_duration_strings(ns, text):
    assert go_duration(ns) == text


def test_json_is_two_space_indented_with_go_escapes():
    body = encode_json({"subject": "foo.>", "a": [1], "t": "<&>"}).decode()
    assert body == ('{\n  "subject": "foo.\\u003e",\n  "a": [\n    1\n  ],\n'
                    '  "t": "\\u003c\\u0026\\u003e"\n}')
    assert json.loads(body) == {"subject": "foo.>", "a": [1], "t": "<&>"}
    assert encode_json({"status": "ok"}, compact=True) == b'{"status":"ok"}'


@pytest.mark.parametrize("name, ok", [
    ("cb", True), ("jQuery123_abc", True), ("a.b.c", True), ("$x", True),
    ("", False), ("1abc", False), ("alert(1);x", False), ("a<b", False), ("x" * 200, False),
])
def test_jsonp_callback_names(name, ok):
    assert valid_callback(name) is ok


def test_paging_rules():
    assert paging({}) == (0, 1024)
    assert paging({"offset": "-5", "limit": "0"}) == (0, 1024)
    assert paging({"offset": "3", "limit": "-1"}) == (3, 1024)
    assert paging({"offset": "2", "limit": "7"}) == (2, 7)
    with pytest.raises(MonitorError) as caught:
        paging({"offset": "abc"})
    assert caught.value.status == 400


def test_cpu_sampler_measures_over_a_window():
    clock = {"wall": 100.0, "cpu": 10.0}
    sampler = CpuSampler(clock=lambda: clock["wall"], cpu=lambda: clock["cpu"])
    assert sampler.percent() == 0.0  # no time has passed
    clock.update(wall=100.5, cpu=10.25)
    assert sampler.percent() == 50.0  # half a core over 0.5 s; window still open
    clock.update(wall=102.0, cpu=11.0)
    assert sampler.percent() == 50.0  # 1 s of CPU over 2 s; window closes here
    clock.update(wall=103.0, cpu=13.0)
    assert sampler.percent() == 200.0  # two cores busy in the new window


def test_rss_is_a_plausible_number_of_bytes():
    assert 1024 * 1024 < rss_bytes() < 64 * 1024**3
