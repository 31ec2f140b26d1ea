"""deploy/'s Dockerfile, compose file and Kubernetes manifests: what they must hold, and
every container's command line and environment through `runnel serve --check-config`."""
from __future__ import annotations

import re
import shlex
import tomllib

import pytest

from broker.config import load_options
from broker.streaming import parse_peers
from tests.deploy import guide, layout
from tests.deploy.layout import DEPLOY, REPO
from tests.deploy.yamlish import load_all

NODE_PORTS = {"client": 4222, "monitor": 8222, "raft": 6222, "routes": 6223}
CHECK = {"RUNNEL_CHECK_CONFIG": "1"}


@pytest.fixture(scope="module")
def shims(tmp_path_factory):
    return layout.write_shims(tmp_path_factory.mktemp("bin"))


def flag(args: list[str], name: str) -> str:
    """The value of ``--name=value`` (the form deploy/'s files use)."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name}= in {args}"
    return values[0]


def uid_of(user: str) -> int:
    """The uid that the Dockerfile's useradd gives ``user``."""
    run = " ".join(rest for word, rest in layout.final_stage() if word == "RUN")
    return int(re.search(rf"useradd [^&]*--uid (\d+)[^&]* {user}\b", run)[1])


# ---------------------------------------------------------------------------
# Dockerfile

def test_dockerfile_slim_non_root_volume_ports_healthcheck_signals():
    stage = layout.final_stage()
    words = [word for word, _ in stage]
    base = stage[0][1]
    arg = dict(rest.split("=", 1) for word, rest in layout.dockerfile() if word == "ARG")
    image = arg.get(base.strip("${}"), base)
    assert image.startswith("python:") and "slim" in image, image
    user = [rest for word, rest in stage if word == "USER"][-1].split(":")[0]
    assert user not in ("root", "0") and uid_of(user) >= 1000
    assert [rest for word, rest in stage if word == "VOLUME"] == ['["/data"]']
    exposed = {int(p) for word, rest in stage if word == "EXPOSE" for p in rest.split()}
    assert exposed == set(NODE_PORTS.values())
    assert layout.exec_form("ENTRYPOINT") == ["tini", "--", "runnel-entrypoint"]
    assert "tini" in " ".join(rest for word, rest in stage if word == "RUN")
    healthcheck = [rest for word, rest in stage if word == "HEALTHCHECK"][-1]
    assert healthcheck.endswith('CMD ["runnel-probe", "live"]')
    assert ("STOPSIGNAL", "SIGTERM") in stage
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")


def test_dockerfile_copies_what_the_context_lets_in():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split("\n")
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    copies = [rest.split()[-2] for word, rest in layout.final_stage() if word == "COPY"]
    for source in copies:
        assert source in allowed and (REPO / source).exists(), source
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} | {"pyproject.toml", "README.md"} <= allowed
    assert (DEPLOY / "entrypoint.sh").stat().st_mode & 0o111


def test_the_images_default_command_passes_check_config(shims):
    proc = layout.run_entrypoint(layout.exec_form("CMD"), {**layout.image_env(), **CHECK}, shims)
    assert (proc.returncode, proc.stdout) == (0, "configuration OK\n"), proc.stderr


def test_entrypoint_runs_other_commands_as_they_are(shims):
    proc = layout.run_entrypoint(["runnel", "version"], {}, shims)
    assert proc.returncode == 0 and proc.stdout.startswith("runnel version ")
    proc = layout.run_entrypoint(["--port=x"], CHECK, shims)
    assert proc.returncode == 2 and 'invalid value "x" for flag -port' in proc.stderr


# ---------------------------------------------------------------------------
# docker-compose.yml

def test_compose_three_nodes_named_volumes_peers_by_service_name_published_ports():
    doc = layout.load_compose()
    containers = layout.compose_containers(doc)
    names = [c.name for c in containers]
    assert names == ["n1", "n2", "n3"]
    assert doc["name"] == "runnel"
    assert set(doc["volumes"]) == {f"{n}-data" for n in names}
    published = set()
    for c in containers:
        service = doc["services"][c.name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["image"] == "runnel:local"
        assert service["restart"] == "unless-stopped"
        assert c.volumes == {"/data": f"runnel_{c.name}-data"}
        assert flag(c.args, "dir") == "/data" and flag(c.args, "store") == "file"
        assert sorted(c.ports.values()) == [4222, 8222]          # clients and monitoring
        published |= set(c.ports)
        assert flag(c.args, "port") == "4222" and flag(c.args, "http_port") == "8222"
        assert flag(c.args, "addr") == "0.0.0.0" and "--clustered" in c.args
        assert flag(c.args, "cluster_node_id") == c.name
        peers = flag(c.args, "cluster_peers").split(",")
        assert parse_peers(peers) == {n: f"{n}:6222" for n in names}
        assert flag(c.args, "cluster") == "nats://0.0.0.0:6223"
        assert flag(c.args, "routes").split(",") == [f"nats://{n}:6223" for n in names
                                                     if n != c.name]
        assert c.env["RUNNEL_MONITOR_URL"] == "http://127.0.0.1:8222"
    assert len(published) == 6


@pytest.mark.parametrize("service", ["n1", "n2", "n3"])
def test_each_compose_service_passes_check_config(shims, service):
    [c] = [c for c in layout.compose_containers() if c.name == service]
    proc = layout.run_entrypoint(c.args, {**c.env, **CHECK}, shims)
    assert (proc.returncode, proc.stdout) == (0, "configuration OK\n"), proc.stderr


def test_check_config_refuses_a_service_that_is_not_in_its_peers(shims):
    c = layout.compose_containers()[0]
    args = [a.replace("--cluster_node_id=n1", "--cluster_node_id=n4") for a in c.args]
    proc = layout.run_entrypoint(args, {**c.env, **CHECK}, shims)
    assert proc.returncode == 2 and "must list this node as n4@host:port" in proc.stderr


# ---------------------------------------------------------------------------
# Kubernetes

@pytest.fixture(scope="module")
def k8s():
    docs = layout.k8s_documents()
    return {"docs": docs, "sts": layout.k8s_find(docs, "StatefulSet")}


def pod_options(container: layout.Container, tmp_path):
    """The pod's Options, loaded as `runnel serve` loads them in the pod."""
    return load_options(localized_args(container, tmp_path), env=container.env)


def localized_args(container: layout.Container, tmp_path) -> list[str]:
    """The pod's args with its mounted ConfigMap files written under ``tmp_path``."""
    paths = {}
    for path, content in container.files.items():
        mount, _, name = path.rpartition("/")
        local = tmp_path / container.name / mount.strip("/").replace("/", "-")
        local.mkdir(parents=True, exist_ok=True)
        (local / name).write_text(content)
        paths[mount] = str(local)
    return [layout.localize(a, "0.0.0.0", {}, paths) for a in container.args]


def test_k8s_objects_and_their_selectors(k8s):
    docs, sts = k8s["docs"], k8s["sts"]
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "PodDisruptionBudget", "Service",
                                               "Service", "StatefulSet"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    headless = layout.k8s_find(docs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    services = [d for d in docs if d["kind"] == "Service" and d is not headless]
    [client] = services
    assert client["spec"].get("clusterIP") != "None"
    for service in (headless, client):
        assert service["spec"]["selector"].items() <= labels.items()
    assert {p["name"]: p["port"] for p in headless["spec"]["ports"]} == NODE_PORTS
    assert {p["name"]: p["port"] for p in client["spec"]["ports"]} == {
        "client": 4222, "monitor": 8222}
    pdb = layout.k8s_find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    replicas = sts["spec"]["replicas"]
    assert replicas == 3
    assert pdb["spec"]["maxUnavailable"] == replicas - (replicas // 2 + 1)


def test_k8s_statefulset_pods_probes_storage_and_user(k8s):
    spec = k8s["sts"]["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == NODE_PORTS
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "monitor"}
    assert container["readinessProbe"]["exec"]["command"] == ["runnel-probe", "ready"]
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    user = [rest for word, rest in layout.final_stage() if word == "USER"][-1].split(":")[0]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == context["fsGroup"] == uid_of(user)
    env = {e["name"]: e for e in container["env"]}
    assert env["RUNNEL_NODE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_k8s_config_names_every_pod_by_its_headless_dns_name(k8s, tmp_path):
    spec = k8s["sts"]["spec"]
    pods = layout.statefulset_containers(k8s["docs"])
    assert [p.name for p in pods] == ["runnel-0", "runnel-1", "runnel-2"]
    for pod in pods:
        options = pod_options(pod, tmp_path)
        assert options.cluster_node_id == pod.name
        assert parse_peers(options.cluster_peers) == {
            p.name: f"{p.name}.{spec['serviceName']}:6222" for p in pods}
        assert options.routes == [f"nats://{p.hostname}:6223" for p in pods]
        assert options.cluster_listen == "0.0.0.0:6223"
        assert (options.host, options.port, options.http_port) == ("0.0.0.0", 4222, 8222)
        assert (options.store_type, options.store_dir) == ("FILE", "/data")


@pytest.mark.parametrize("ordinal", [0, 1, 2])
def test_each_k8s_pod_passes_check_config(k8s, shims, tmp_path, ordinal):
    pod = layout.statefulset_containers(k8s["docs"])[ordinal]
    proc = layout.run_entrypoint(localized_args(pod, tmp_path), {**pod.env, **CHECK}, shims)
    assert (proc.returncode, proc.stdout) == (0, "configuration OK\n"), proc.stderr


def test_check_config_refuses_a_pod_beyond_the_peer_list(k8s, shims, tmp_path):
    pod = layout.statefulset_containers(k8s["docs"])[2]
    env = {**pod.env, "RUNNEL_NODE_ID": "runnel-3", **CHECK}
    proc = layout.run_entrypoint(localized_args(pod, tmp_path), env, shims)
    assert proc.returncode == 2 and "must list this node as runnel-3@host:port" in proc.stderr


def test_k8s_data_pod_mounts_the_last_pods_claim(k8s):
    [pod] = load_all((DEPLOY / "k8s" / "maintenance" / "data-pod.yaml").read_text())
    spec = k8s["sts"]["spec"]
    claim = spec["volumeClaimTemplates"][0]["metadata"]["name"]
    last = f"{k8s['sts']['metadata']['name']}-{spec['replicas'] - 1}"
    [volume] = pod["spec"]["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == f"{claim}-{last}"
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == "/data"
    assert pod["spec"]["securityContext"]["runAsUser"] == \
        spec["template"]["spec"]["securityContext"]["runAsUser"]


# ---------------------------------------------------------------------------
# The guide's commands

def test_every_sh_block_of_the_guide_is_run_by_the_tests():
    names = [name for language, _body, name in guide.blocks() if language == "sh"]
    assert None not in names, "an `sh` block of deploy/README.md has no <!-- test: --> mark"
    assert sorted(guide.tested()) == sorted(
        ["up", "clients", "health", "replace", "restart", "backup", "restore",
         "upgrade-image", "upgrade-node"])


def test_the_guides_kubernetes_commands_match_the_manifests(k8s):
    text = guide.text()
    sts = k8s["sts"]
    pod_args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    [check] = re.findall(r"kubectl exec runnel-0 -- runnel serve (.*)", text)
    assert shlex.split(check) == [*pod_args, "--check-config"]
    dns = set(re.findall(r"runnel-\d\.[\w-]+", text)) - {"runnel-2.tgz"}
    assert dns == {f"runnel-{i}.{sts['spec']['serviceName']}" for i in range(3)}
    claims = set(re.findall(r"data-runnel-\d", text))
    assert claims == {f"data-runnel-{i}" for i in range(3)}
