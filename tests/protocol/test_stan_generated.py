"""The committed protocol_pb2.py matches protocol.proto, and the package stays pure."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from broker.protocol.stan import protocol_pb2

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "broker" / "protocol" / "stan"
PROTO = "broker/protocol/stan/protocol.proto"


def test_descriptor_names_the_real_path_and_module():
    assert protocol_pb2.DESCRIPTOR.name == PROTO
    assert protocol_pb2.PubMsg.DESCRIPTOR.full_name == "pb.PubMsg"


def test_committed_module_matches_the_proto(tmp_path):
    pytest.importorskip("grpc_tools")
    out = tmp_path / "set.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", ".",
                    f"--descriptor_set_out={out}", f"--python_out={tmp_path}", PROTO],
                   cwd=ROOT, check=True)
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    for message in fresh.message_type:  # protoc fills json_name only in descriptor sets
        for field in message.field:
            field.ClearField("json_name")
    committed = descriptor_pb2.FileDescriptorProto()
    protocol_pb2.DESCRIPTOR.CopyToProto(committed)
    assert committed == fresh, "protocol.proto changed: run broker/protocol/stan/regen.sh"
    generated = (tmp_path / PROTO).with_name("protocol_pb2.py").read_text()
    current = (PACKAGE / "protocol_pb2.py").read_text()
    if _version_line(generated) == _version_line(current):  # same protoc: same bytes
        assert generated == current


def _version_line(source: str) -> str:
    return next(line for line in source.splitlines() if "Protobuf Python Version" in line)


def test_package_imports_nothing_impure():
    allowed = {"__future__", "re", "typing", "google"}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] in allowed, f"{path.name} imports {module}"
