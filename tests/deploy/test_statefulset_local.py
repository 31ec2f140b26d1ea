"""The StatefulSet's three pods as local processes: each pod's name its own 127.0.0.x
address (same ports), its ConfigMap file and its volume as local files, its environment as
the kubelet gives it. They elect a leader, pass their readiness probe, and serve
NATS Streaming and plain NATS (over routes that list every pod, itself included) across
pods."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import nats
import pytest

from tests.deploy import layout
from tests.support.stan import Stan, eventually

pytestmark = pytest.mark.timeout(120)
DEADLINE_S = 30.0


@pytest.fixture
def pods(tmp_path):
    containers = layout.statefulset_containers()
    addresses = layout.pick_addresses(len(containers), [4222, 8222, 6222, 6223])
    hosts = {c.hostname: a for c, a in zip(containers, addresses)}
    shims = layout.write_shims(tmp_path / "bin")
    started = []
    for container, address in zip(containers, addresses):
        root = tmp_path / container.name
        paths = {mount: str(root / f"pvc-{volume}")
                 for mount, volume in container.volumes.items()}
        for path, content in container.files.items():
            mount, _, name = path.rpartition("/")
            local = root / "mounts" / mount.strip("/").replace("/", "-")
            local.mkdir(parents=True, exist_ok=True)
            paths[mount] = str(local)
        for path, content in container.files.items():
            mount, _, name = path.rpartition("/")
            (root / "mounts" / mount.strip("/").replace("/", "-") / name).write_text(
                layout.localize(content, address, hosts, paths))
        for local in paths.values():
            Path(local).mkdir(parents=True, exist_ok=True)
        view = lambda text: layout.localize(text, address, hosts, paths)  # noqa: E731
        env = {**layout.machine_env(shims), **{k: view(v) for k, v in container.env.items()}}
        log = open(root / "pod.log", "wb")
        proc = subprocess.Popen(
            ["/bin/sh", str(layout.DEPLOY / "entrypoint.sh"), *map(view, container.args)],
            env=env, cwd=paths["/data"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        started.append((container, address, proc, env, root / "pod.log"))
    try:
        yield started
    finally:
        for _c, _a, proc, _e, _l in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def readiness(env: dict) -> subprocess.CompletedProcess:
    """The pod's readiness probe command, in the pod's environment, with a deadline."""
    sts = layout.k8s_find(layout.k8s_documents(), "StatefulSet")
    command = sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]
    return subprocess.run([*command["command"], "--wait", str(DEADLINE_S)], env=env,
                          capture_output=True, text=True, timeout=DEADLINE_S + 10)


async def test_the_statefulsets_pods_form_a_cluster_and_serve_across_pods(pods):
    for container, address, proc, env, log in pods:
        probe = readiness(env)
        assert probe.returncode == 0, f"{container.name}: {probe.stderr}\n{log.read_text()}"
    views = [json.loads(urllib.request.urlopen(f"http://{address}:8222/streaming/serverz",
                                               timeout=2).read()) for _c, address, *_ in pods]
    assert [v["node_id"] for v in views] == ["runnel-0", "runnel-1", "runnel-2"]
    assert len({v["leader"] for v in views}) == 1

    first, last = f"nats://{pods[0][1]}:4222", f"nats://{pods[2][1]}:4222"
    subscriber = await Stan.connect(first, "sts-sub")
    publisher = await Stan.connect(last, "sts-pub")
    try:
        sub = await subscriber.subscribe("sts.smoke")
        for i in range(5):
            await publisher.publish("sts.smoke", b"%d" % i)
        await eventually(lambda: len(sub.msgs) == 5, DEADLINE_S, "5 messages across pods")
    finally:
        await publisher.close()
        await subscriber.close()

    # plain NATS crosses pods over the routes (each pod's list names itself too)
    nc_sub = await nats.connect(first, allow_reconnect=False)
    nc_pub = await nats.connect(last, allow_reconnect=False)
    try:
        got = []

        async def received(msg):
            got.append(msg.data)
        await nc_sub.subscribe("sts.plain", cb=received)
        await nc_sub.flush()
        deadline = time.monotonic() + DEADLINE_S
        while not got and time.monotonic() < deadline:   # until the interest has crossed
            await nc_pub.publish("sts.plain", b"hello")
            await nc_pub.flush()
            await asyncio.sleep(0.1)
        assert got and set(got) == {b"hello"}
    finally:
        await nc_pub.close()
        await nc_sub.close()

    for container, _address, proc, _env, _log in pods:
        proc.send_signal(signal.SIGTERM)
    assert [proc.wait(30) for *_x, proc, _e, _l in pods] == [143, 143, 143]
