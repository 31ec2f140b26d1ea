"""The YAML subset reader of the deploy tests, and that deploy/'s files mean the same to
PyYAML (where an interpreter with PyYAML is found; the project's .venv has none)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.deploy.layout import DEPLOY, REPO
from tests.deploy.yamlish import YamlError, load, load_all

FILES = sorted([DEPLOY / "docker-compose.yml", *DEPLOY.glob("k8s/**/*.yaml")])


def test_reads_the_subset():
    text = """\
# comment
name: runnel   # trailing comment
services:
  n1:
    command:
      - --a=b:1
      - "-x"
    environment:
      URL: http://h:8222/x#frag
    ports: ["4222:4222", '8222:8222']
    empty: {}
    none:
list:
- name: a
  value: 1
- [x, z]
- plain text
flags: [true, false, null, 12, -3]
conf: |
  line 1
    indented # not a comment

  line 4
tail: |-
  no newline
---
second: doc
"""
    first, second = load_all(text)
    assert first == {
        "name": "runnel",
        "services": {"n1": {"command": ["--a=b:1", "-x"],
                            "environment": {"URL": "http://h:8222/x#frag"},
                            "ports": ["4222:4222", "8222:8222"], "empty": {}, "none": None}},
        "list": [{"name": "a", "value": 1}, ["x", "z"], "plain text"],
        "flags": [True, False, None, 12, -3],
        "conf": "line 1\n  indented # not a comment\n\nline 4\n",
        "tail": "no newline",
    }
    assert second == {"second": "doc"}


@pytest.mark.parametrize("text", [
    "a: yes", "a: off", "ports: [22:22]", "a: 012", "a: 1.5", "a: 1e3", "a: 0x1F",
    "a: &anchor x", "a: *alias", "a: >\n  folded", "a: [x, [y]]", "a: x: y",
    "a: 1\na: 2", "a:\n\tb: 1", "a:\n  b: 1\n c: 2",
])
def test_refuses_what_is_not_in_the_subset_or_is_ambiguous(text):
    with pytest.raises(YamlError):
        load_all(text)


def _pyyaml_python() -> list[str] | None:
    try:
        import yaml  # noqa: F401
        return [sys.executable]
    except ImportError:
        pass
    for candidate in ("python3", "/usr/bin/python3", "/usr/local/bin/python3"):
        path = shutil.which(candidate)
        if path and subprocess.run([path, "-c", "import yaml"], capture_output=True).returncode == 0:
            return [path]
    return None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_deploy_files_read_the_same_with_pyyaml(path):
    python = _pyyaml_python()
    if python is None:
        pytest.skip("no Python interpreter with PyYAML here")
    script = ("import json, sys, yaml; "
              "print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))")
    proc = subprocess.run([*python, "-c", script, str(path)], capture_output=True, text=True,
                          timeout=30, check=True)
    theirs = [doc for doc in json.loads(proc.stdout) if doc is not None]
    assert load_all(path.read_text()) == theirs


def test_every_deploy_yaml_file_is_in_the_subset():
    assert FILES, "no YAML files under deploy/"
    for path in FILES:
        assert load_all(path.read_text()), path
    assert load((DEPLOY / "docker-compose.yml").read_text())["services"]
