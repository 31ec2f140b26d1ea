#!/bin/sh
# Regenerate protocol_pb2.py from protocol.proto, then commit both.
#
# The command, run from the repository root, is exactly:
#   .venv/bin/python -m grpc_tools.protoc -I . --python_out=. broker/protocol/stan/protocol.proto
#
# "-I ." (the repository root) makes the descriptor's file name
# "broker/protocol/stan/protocol.proto" and the generated module name
# "broker.protocol.stan.protocol_pb2", the real import path.
# Set PYTHON to use another interpreter that has grpcio-tools installed.
set -eu
cd "$(dirname "$0")/../../.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m grpc_tools.protoc -I . --python_out=. broker/protocol/stan/protocol.proto
"$PYTHON" -m grpc_tools.protoc --version
