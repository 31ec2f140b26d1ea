"""deploy/'s files read as a container engine would run them, and their mapping onto this
machine: each container its own 127.0.0.x address (same ports), its volumes directories.

Inside a container, ``0.0.0.0``, ``127.0.0.1`` and ``localhost`` are the container itself;
here they become its address. Peers' names (compose service names, pod DNS names) become
their addresses where they stand as a host (before ``:port``); container paths of volumes and
mounted files become directories. Nothing else in an argument changes.
"""
from __future__ import annotations

import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.yamlish import load, load_all

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_PATH = "deploy/docker-compose.yml"
K8S = DEPLOY / "k8s"


@dataclass
class Container:
    name: str                                  # compose service or pod name
    hostname: str                              # how the peers address it
    args: list[str]                            # after the image's ENTRYPOINT
    env: dict[str, str]
    volumes: dict[str, str] = field(default_factory=dict)   # container path -> volume name
    files: dict[str, str] = field(default_factory=dict)     # container path -> content
    ports: dict[int, int] = field(default_factory=dict)     # published host port -> port


# ---------------------------------------------------------------------------
# Dockerfile

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of every instruction, in order; continuation lines
    joined, comments dropped."""
    out, pending = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if line.endswith("\\"):
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def exec_form(instruction: str) -> list[str]:
    """The JSON (exec form) arguments of the final stage's last ``instruction``."""
    values = [rest for word, rest in final_stage() if word == instruction]
    assert values, f"no {instruction} in deploy/Dockerfile"
    value = json.loads(values[-1])
    assert isinstance(value, list), f"{instruction} must use the exec (JSON) form"
    return value


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in final_stage():
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


# ---------------------------------------------------------------------------
# docker-compose.yml

def load_compose() -> dict:
    return load((REPO / COMPOSE_PATH).read_text())


def compose_containers(doc: dict | None = None) -> list[Container]:
    doc = doc or load_compose()
    out = []
    for name, service in doc["services"].items():
        command = service.get("command", exec_form("CMD"))
        args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        env = dict(image_env())
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        env.update({key: "" if value is None else str(value)
                    for key, value in environment.items()})
        volumes = {}
        for entry in service.get("volumes") or []:
            source, target = entry.split(":")[:2]
            volumes[target] = f"{doc.get('name', 'deploy')}_{source}"
        ports = {}
        for entry in service.get("ports") or []:
            host, container = str(entry).rsplit(":", 1)
            ports[int(host.rsplit(":", 1)[-1])] = int(container)
        out.append(Container(name, service.get("hostname", name), args, env, volumes,
                             ports=ports))
    return out


# ---------------------------------------------------------------------------
# Kubernetes

def k8s_documents() -> list[dict]:
    """Every manifest of deploy/k8s/*.yaml (what `kubectl apply -f deploy/k8s/` applies)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += load_all(path.read_text())
    return docs


def k8s_find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d.get("kind") == kind
             and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def statefulset_containers(docs: list[dict] | None = None) -> list[Container]:
    """One Container per pod of the StatefulSet: the pod name from its ordinal, env from
    values and the downward API, ConfigMap volumes as files, `$(VAR)` expanded in args as
    the kubelet does."""
    docs = docs or k8s_documents()
    sts = k8s_find(docs, "StatefulSet")
    name, spec = sts["metadata"]["name"], sts["spec"]
    pod_spec = spec["template"]["spec"]
    container = pod_spec["containers"][0]
    namespace_dns = spec["serviceName"]
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []}
    out = []
    for ordinal in range(spec["replicas"]):
        pod = f"{name}-{ordinal}"
        env = dict(image_env())
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = _K8S_VAR.sub(lambda m: env.get(m[1], m[0]), str(item["value"]))
            else:
                path = item["valueFrom"]["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": pod}[path]
        command = container.get("command")
        assert command is None, "the StatefulSet must keep the image's entrypoint"
        args = container.get("args", exec_form("CMD"))
        args = [_K8S_VAR.sub(lambda m: env.get(m[1], m[0]), str(a)) for a in args]
        files, mounts = {}, {}
        for mount in container.get("volumeMounts") or []:
            if mount["name"] in claims:
                mounts[mount["mountPath"]] = f"{mount['name']}-{pod}"
                continue
            source = volumes[mount["name"]]
            config_map = k8s_find(docs, "ConfigMap", source["configMap"]["name"])
            for key, content in config_map["data"].items():
                files[f"{mount['mountPath'].rstrip('/')}/{key}"] = content
        out.append(Container(pod, f"{pod}.{namespace_dns}", args, env, mounts, files))
    return out


# ---------------------------------------------------------------------------
# Container world -> this machine

def localize(text: str, own: str, hosts: dict[str, str], paths: dict[str, str]) -> str:
    """``text`` as seen from a container whose address here is ``own``."""
    for container_path in sorted(paths, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.\-/]){re.escape(container_path)}(?=/|$|[\s\"',;:)])",
                      lambda m, p=container_path: str(paths[p]), text)
    for host in sorted(hosts, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.\-]){re.escape(host)}(?=:\d)", hosts[host], text)
    return re.sub(r"(?<![\w.\-])(0\.0\.0\.0|127\.0\.0\.1|localhost)(?![\w\-]|\.\d)", own, text)


def bindable(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            return True
        except OSError:
            return False


def pick_addresses(count: int, ports: list[int]) -> list[str]:
    """``count`` loopback addresses 127.0.0.x on which every port of ``ports`` is free
    (another run, or a `make run` on 127.0.0.1:4222, may hold some)."""
    bases = list(range(10, 250, 10))
    random.shuffle(bases)  # two runs at once rarely try the same ones
    for base in bases:
        addresses = [f"127.0.0.{base + i + 1}" for i in range(count)]
        if all(bindable(a, p) for a in addresses for p in ports):
            return addresses
    raise RuntimeError(f"no {count} loopback addresses with ports {ports} free")


# ---------------------------------------------------------------------------
# Running the image's entrypoint here

def write_shims(bin_dir: Path) -> Path:
    """`runnel` and `runnel-probe` as the image installs them, from this checkout."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shims = {"runnel": f'exec "{sys.executable}" -m broker "$@"',
             "runnel-probe": f'exec "{sys.executable}" "{DEPLOY / "probe.py"}" "$@"'}
    for name, body in shims.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def machine_env(bin_dir: Path) -> dict[str, str]:
    """This process's environment without RUNNEL_* variables, the shims first on PATH."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RUNNEL_", "PYTEST_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    return env


def run_entrypoint(args: list[str], env: dict[str, str], bin_dir: Path,
                   cwd: Path | None = None) -> subprocess.CompletedProcess:
    """deploy/entrypoint.sh with ``args`` and the container's ``env``, to completion."""
    return subprocess.run(["/bin/sh", str(DEPLOY / "entrypoint.sh"), *args],
                          env={**machine_env(bin_dir), **env}, capture_output=True, text=True,
                          timeout=60, cwd=cwd or REPO)
