"""The committed module works with both protobuf backends: upb (the default) and the
pure-Python one that asyncio-nats-streaming needs (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION
=python). The codec tests run again in a child process under the pure-Python backend."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}


def test_imports_under_the_pure_python_backend():
    code = ("from google.protobuf.internal import api_implementation as a\n"
            "from broker.protocol import stan\n"
            "assert a.Type() == 'python', a.Type()\n"
            "assert stan.Ack(subject='foo', sequence=5).SerializeToString()"
            " == bytes.fromhex('0a03666f6f1005')\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True,
                   timeout=60)


def test_codec_suite_passes_under_the_pure_python_backend():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(Path(__file__).with_name("test_stan_codec.py"))],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
