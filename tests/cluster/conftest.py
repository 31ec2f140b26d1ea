"""Fixtures of the cluster scenarios (issue 6 item 7): real 3-node Runnel clusters.

``cluster`` starts n1, n2, n3 (``python -m broker --clustered``) on 127.0.0.1 with
free ports and a FILE store each under the test's tmp_path, waits for an agreed
leader, and kills every node at the end. ``subs`` starts node-nats-streaming
subscribers that know every node, and kills them at the end.

Node logs are in ``<tmp_path>/n1.log`` ...; a failing test prints their tails.
"""
from __future__ import annotations

import pytest

from tests.cluster.judge import NodeSub
from tests.support.cluster import Cluster

@pytest.fixture
def cluster_factory(tmp_path, request):
    made: list[Cluster] = []
    request.node.runnel_clusters = made

    def make(size: int = 3, extra_flags: tuple = (), start: bool = True) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", size, extra_flags)
        cluster.root.mkdir(parents=True, exist_ok=True)
        made.append(cluster)
        if start:
            cluster.start()
            cluster.leader()
        return cluster

    yield make
    for cluster in made:
        cluster.close()


@pytest.fixture
def cluster(cluster_factory) -> Cluster:
    """A started 3-node cluster with an elected leader."""
    return cluster_factory()


@pytest.fixture
def subs():
    started: list[NodeSub] = []

    def start(servers: list[str], client: str, channel: str, **options) -> NodeSub:
        sub = NodeSub(servers, client, channel, **options)
        started.append(sub)
        return sub

    yield start
    for sub in started:
        sub.kill()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every node's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for cluster in getattr(item, "runnel_clusters", []):
            report.sections.append(("cluster logs", cluster.logs_tail()))
