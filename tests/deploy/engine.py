"""A stand-in for the Docker engine, enough to run the operator's guide (deploy/README.md)
as written, with the compose file's services as local processes.

Each service is the image's entrypoint (deploy/entrypoint.sh, which execs `runnel serve`)
with the service's command and environment, run on its own 127.0.0.x address (same ports)
with its named volumes as directories: see tests/deploy/layout.py for the mapping.
`runnel` and `runnel-probe` are this checkout's (small shims on PATH).

The commands it knows are the ones the guide uses, with their flags; anything else fails the
test, so the guide cannot drift to a command nobody ran:

    make compose-up | compose-down
    docker compose -f deploy/docker-compose.yml
        up -d [--build] [--wait] [--no-deps] [--force-recreate] [SERVICE...]
        down | stop [SERVICE...] | start [SERVICE...] | restart [SERVICE...]
        kill [SERVICE...] | rm --stop --force SERVICE...
        run --rm --no-deps [-e K=V]... SERVICE [ARG...]
        exec SERVICE COMMAND...
    docker volume rm VOLUME...
    docker run --rm [--user U] [-v SOURCE:TARGET[:ro]]... IMAGE COMMAND...
    docker build -f deploy/Dockerfile -t IMAGE .   (nothing to do: the image is this checkout)
    curl -s URL                                   (URL on a published port)
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.deploy import layout

# What deploy/deploy.mk's targets run (tests/deploy/test_deploy_mk.py holds them equal).
MAKE_TARGETS = {
    "compose-up": f"docker compose -f {layout.COMPOSE_PATH} up -d --build --wait",
    "compose-down": f"docker compose -f {layout.COMPOSE_PATH} down",
}
NODE_PORTS = [4222, 8222, 6222, 6223]
WAIT_S = 30.0


@dataclass
class Result:
    command: str
    code: int
    out: str
    err: str = ""


class EngineError(AssertionError):
    pass


class Service:
    def __init__(self, container: layout.Container, address: str):
        self.c = container
        self.address = address
        self.proc: subprocess.Popen | None = None
        self.exists = False          # a container exists (running or stopped)
        self.exit_codes: list[int] = []

    @property
    def name(self) -> str:
        return self.c.name

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalCompose:
    """The compose project of deploy/docker-compose.yml, run as local processes under
    ``root``: volumes/ (named volumes), logs/, bin/ (shims), operator/ (the guide's $PWD)."""

    def __init__(self, root: Path):
        self.root = root
        self.doc = layout.load_compose()
        self.image = {s.get("image") for s in self.doc["services"].values()}.pop()
        containers = layout.compose_containers(self.doc)
        addresses = layout.pick_addresses(len(containers), NODE_PORTS)
        self.services = {c.name: Service(c, a) for c, a in zip(containers, addresses)}
        self.hosts = {s.c.hostname: s.address for s in self.services.values()}
        self.hosts.update({s.name: s.address for s in self.services.values()})
        self.published = {port: (s, inner) for s in self.services.values()
                          for port, inner in s.c.ports.items()}
        self.volumes = root / "volumes"
        self.logs = root / "logs"
        self.bin = root / "bin"
        self.cwd = root / "operator"
        for path in (self.volumes, self.logs, self.bin, self.cwd):
            path.mkdir(parents=True, exist_ok=True)
        layout.write_shims(self.bin)
        self.history: list[Result] = []

    # -- the machine --

    def base_env(self) -> dict[str, str]:
        return layout.machine_env(self.bin)

    def volume_dir(self, volume: str) -> Path:
        path = self.volumes / volume
        path.mkdir(parents=True, exist_ok=True)
        return path

    def container_view(self, service: Service, text: str,
                       extra_paths: dict[str, str] | None = None) -> str:
        paths = {target: str(self.volume_dir(volume))
                 for target, volume in service.c.volumes.items()}
        paths.update(extra_paths or {})
        return layout.localize(text, service.address, self.hosts, paths)

    def container_env(self, service: Service, extra: dict[str, str] | None = None) -> dict:
        env = self.base_env()
        for key, value in {**service.c.env, **(extra or {})}.items():
            env[key] = self.container_view(service, value)
        return env

    def container_cwd(self, service: Service) -> str:
        workdir = [rest for word, rest in layout.final_stage() if word == "WORKDIR"][-1]
        return self.container_view(service, workdir)

    # -- services --

    def start(self, service: Service) -> None:
        if service.running():
            return
        args = [self.container_view(service, arg) for arg in service.c.args]
        log = open(self.logs / f"{service.name}.log", "ab")
        log.write(f"--- start: entrypoint {shlex.join(args)}\n".encode())
        log.flush()
        service.proc = subprocess.Popen(
            ["/bin/sh", str(layout.DEPLOY / "entrypoint.sh"), *args],
            env=self.container_env(service), cwd=self.container_cwd(service),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        service.exists = True

    def healthcheck(self, service: Service) -> bool:
        """The image's HEALTHCHECK command, run in the container."""
        proc = subprocess.run(self._healthcheck_cmd(), env=self.container_env(service), capture_output=True,
                              timeout=10)
        return proc.returncode == 0

    def _healthcheck_cmd(self) -> list[str]:
        rest = [rest for word, rest in layout.final_stage() if word == "HEALTHCHECK"][-1]
        return json.loads(rest[rest.index("CMD") + 3:].strip())

    def wait_healthy(self, service: Service, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthcheck(service):
            if not service.running():
                raise EngineError(f"{service.name} exited with {service.proc.returncode}:\n"
                                  f"{self.log_tail(service)}")
            if time.monotonic() > deadline:
                raise EngineError(f"{service.name} not healthy after {timeout}s:\n"
                                  f"{self.log_tail(service)}")
            time.sleep(0.1)

    def stop(self, service: Service, sig: int = signal.SIGTERM, send: bool = True) -> int | None:
        """Signal the service (unless ``send`` is False: already signalled), wait for its
        exit as docker does (SIGKILL after the compose file's stop_grace_period)."""
        if service.proc is None or (send and not service.running()):
            return None
        if send:
            service.proc.send_signal(sig)
        grace = _duration_s(self.doc["services"][service.name].get("stop_grace_period", "10s"))
        try:
            code = service.proc.wait(grace)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            code = service.proc.wait(10)
        service.exit_codes.append(code)
        return code

    def kill_all(self) -> None:
        for service in self.services.values():
            if service.running():
                service.proc.kill()
                service.proc.wait(10)

    def log_tail(self, service: Service, lines: int = 30) -> str:
        path = self.logs / f"{service.name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def monitor_url(self, service: Service) -> str:
        return f"http://{service.address}:8222"

    def client_url(self, service: Service) -> str:
        return f"nats://{service.address}:4222"

    def host_view(self, text: str) -> str:
        """``localhost:PORT`` on the operator's machine -> the service publishing PORT."""
        def published(match):
            port = int(match[2])
            if port not in self.published:
                return match[0]
            service, inner = self.published[port]
            return f"{service.address}:{inner}"
        return re.sub(r"(localhost|127\.0\.0\.1):(\d+)", published, text)

    # -- the guide's commands --

    def run_block(self, lines: list[str], rename: dict[str, str] | None = None) -> list[Result]:
        """Run the guide's ``lines``; each must succeed. ``rename`` maps service names
        to others, all at once (``{"n3": "n1", "n1": "n3"}`` swaps them), wherever they
        stand as a word (``n3``, ``runnel_n3-data``, ``runnel-n3.tgz``)."""
        results = []
        pattern = (re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, rename)) +
                              r")(?![A-Za-z0-9])") if rename else None)
        for line in lines:
            if pattern:
                line = pattern.sub(lambda m: rename[m[1]], line)
            result = self.sh(line)
            if result.code != 0:
                raise EngineError(f"`{line}` exited with {result.code}:\n{result.out}\n"
                                  f"{result.err}\n" + "\n".join(
                                      f"== {s.name}\n{self.log_tail(s)}"
                                      for s in self.services.values()))
            results.append(result)
        return results

    def sh(self, line: str) -> Result:
        words = shlex.split(line.replace("$PWD", str(self.cwd)))
        if words[:1] == ["make"] and len(words) == 2 and words[1] in MAKE_TARGETS:
            result = self.sh(MAKE_TARGETS[words[1]])
            result = Result(line, result.code, result.out, result.err)
        elif words[:4] == ["docker", "compose", "-f", layout.COMPOSE_PATH]:
            result = self._compose(line, words[4:])
        elif words[:3] == ["docker", "volume", "rm"]:
            result = self._volume_rm(line, words[3:])
        elif words[:2] == ["docker", "run"]:
            result = self._docker_run(line, words[2:])
        elif words[:2] == ["docker", "build"]:
            if words[2:] != ["-f", "deploy/Dockerfile", "-t", self.image, "."]:
                raise EngineError(f"unknown build: {line}")
            result = Result(line, 0, "")
        elif words[:2] == ["curl", "-s"] and len(words) == 3:
            result = self._curl(line, words[2])
        else:
            raise EngineError(f"the local engine does not know: {line}")
        self.history.append(result)
        return result

    def _services(self, names: list[str]) -> list[Service]:
        unknown = [n for n in names if n not in self.services]
        if unknown:
            raise EngineError(f"no such service: {unknown}")
        return [self.services[n] for n in names] if names else list(self.services.values())

    def _compose(self, line: str, words: list[str]) -> Result:
        verb, rest = words[0], words[1:]
        flags = [w for w in rest if w.startswith("-")]
        names = [w for w in rest if not w.startswith("-")]
        if verb == "up":
            allowed = {"-d", "--build", "--wait", "--no-deps", "--force-recreate"}
            if "-d" not in flags or not set(flags) <= allowed:
                raise EngineError(f"unknown up flags: {line}")
            services = self._services(names)
            if "--force-recreate" in flags:
                for service in services:
                    self.stop(service)
            for service in services:
                self.start(service)
            if "--wait" in flags:
                for service in services:
                    self.wait_healthy(service)
            return Result(line, 0, "")
        if verb in ("down", "stop", "restart", "kill"):
            if flags or (verb == "down" and names):
                raise EngineError(f"unknown {verb} arguments: {line}")
            services = self._services(names)
            sig = signal.SIGKILL if verb == "kill" else signal.SIGTERM
            running = [s for s in services if s.running()]
            for service in running:  # docker stops them in parallel: signal all first
                service.proc.send_signal(sig)
            codes = {s.name: self.stop(s, sig, send=False) for s in running}
            if verb == "down":
                for service in services:
                    service.exists = False
            if verb == "restart":
                for service in services:
                    self.start(service)
            return Result(line, 0, " ".join(f"{k}:{v}" for k, v in codes.items()))
        if verb == "start":
            if flags:
                raise EngineError(f"unknown start flags: {line}")
            services = self._services(names)
            for service in services:
                if not service.exists:
                    return Result(line, 1, "", f"service {service.name} has no container")
                self.start(service)
            return Result(line, 0, "")
        if verb == "rm":
            if sorted(flags) != ["--force", "--stop"] or not names:
                raise EngineError(f"unknown rm arguments: {line}")
            for service in self._services(names):
                self.stop(service)
                service.exists = False
            return Result(line, 0, "")
        if verb == "run":
            return self._compose_run(line, rest)
        if verb == "exec":
            service = self._services(rest[:1])[0]
            if not service.running():
                return Result(line, 1, "", f"service {service.name} is not running")
            command = [self.container_view(service, w) for w in rest[1:]]
            proc = subprocess.run(command, env=self.container_env(service), capture_output=True,
                                  text=True, timeout=60, cwd=self.container_cwd(service))
            return Result(line, proc.returncode, proc.stdout, proc.stderr)
        raise EngineError(f"unknown compose command: {line}")

    def _compose_run(self, line: str, rest: list[str]) -> Result:
        env, index = {}, 0
        seen = set()
        while index < len(rest) and rest[index].startswith("-"):
            flag = rest[index]
            if flag == "-e":
                key, _, value = rest[index + 1].partition("=")
                env[key] = value
                index += 2
                continue
            if flag not in ("--rm", "--no-deps"):
                raise EngineError(f"unknown run flag {flag}: {line}")
            seen.add(flag)
            index += 1
        if seen != {"--rm", "--no-deps"}:
            raise EngineError(f"run without --rm --no-deps would start other services: {line}")
        service = self._services(rest[index:index + 1])[0]
        args = rest[index + 1:] or service.c.args
        args = [self.container_view(service, a) for a in args]
        proc = subprocess.run(["/bin/sh", str(layout.DEPLOY / "entrypoint.sh"), *args],
                              env=self.container_env(service, env), capture_output=True,
                              text=True, timeout=60, cwd=self.container_cwd(service))
        return Result(line, proc.returncode, proc.stdout, proc.stderr)

    def _volume_rm(self, line: str, names: list[str]) -> Result:
        for volume in names:
            users = [s.name for s in self.services.values()
                     if s.exists and volume in s.c.volumes.values()]
            if users:
                return Result(line, 1, "", f"volume {volume} is in use by {users}")
            if not (self.volumes / volume).exists():
                return Result(line, 1, "", f"no such volume: {volume}")
            shutil.rmtree(self.volumes / volume)
        return Result(line, 0, "")

    def _docker_run(self, line: str, words: list[str]) -> Result:
        paths, index = {}, 0
        while words[index].startswith("-"):
            flag = words[index]
            if flag == "--rm":
                index += 1
            elif flag == "--user":
                index += 2          # files keep this machine's owner; nothing to map
            elif flag == "-v":
                source, target, *mode = words[index + 1].split(":")
                if source.startswith("/"):
                    Path(source).mkdir(parents=True, exist_ok=True)
                    paths[target] = source
                elif (self.volumes / source).exists():
                    paths[target] = str(self.volumes / source)
                else:
                    return Result(line, 1, "", f"no such volume: {source}")
                index += 2
            else:
                raise EngineError(f"unknown run flag {flag}: {line}")
        if words[index] != self.image:
            raise EngineError(f"unknown image {words[index]}: {line}")
        command = [layout.localize(w, "127.0.0.1", {}, paths) for w in words[index + 1:]]
        proc = subprocess.run(["/bin/sh", str(layout.DEPLOY / "entrypoint.sh"), *command],
                              env=self.base_env(), capture_output=True, text=True, timeout=60,
                              cwd=str(self.cwd))
        return Result(line, proc.returncode, proc.stdout, proc.stderr)

    def _curl(self, line: str, url: str) -> Result:
        try:
            with urllib.request.urlopen(self.host_view(url), timeout=5) as reply:
                return Result(line, 0, reply.read().decode())
        except urllib.error.HTTPError as exc:
            return Result(line, 0, exc.read().decode())   # curl -s without -f: body, status 0
        except OSError as exc:
            return Result(line, 7, "", str(exc))          # curl: couldn't connect


def _duration_s(text: str) -> float:
    text = str(text)
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * scale
    return float(text)
