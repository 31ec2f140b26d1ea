"""Micro-benchmark (not a test) of the STAN codec: µs per encode/decode.

    .venv/bin/python tests/protocol/bench_stan_codec.py
    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python .venv/bin/python tests/protocol/bench_stan_codec.py

Messages carry a 128-byte payload and stan.go-sized fields (22-byte nuid guid and connID).
"encode" builds the message and serializes it; "decode" is `stan.decode` (FromString plus
the UnicodeDecodeError guard). Best of 5 runs.
"""
from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from google.protobuf.internal import api_implementation  # noqa: E402

from broker.protocol import stan  # noqa: E402

DATA = bytes(range(128))
GUID = "pLyMpEygAbCdEfGhIjKlMn"
CONN_ID = b"Qx7dJ2kLmN0pQrStUvWxYz"
TIMESTAMP = 1_700_000_000_123_456_789


def pub_msg() -> stan.PubMsg:
    return stan.PubMsg(clientID="bench-client-01", guid=GUID, subject="bench.channel",
                       data=DATA, connID=CONN_ID)


def msg_proto() -> stan.MsgProto:
    return stan.MsgProto(sequence=123_456, subject="bench.channel", data=DATA,
                         timestamp=TIMESTAMP)


def _read(msg: stan.PubMsg) -> tuple:
    return msg.guid, msg.subject, msg.data, msg.connID


def best_us(func, number: int = 100_000) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def main() -> None:
    pub_bytes = pub_msg().SerializeToString()
    msg_bytes = msg_proto().SerializeToString()
    ack_bytes = stan.Ack(subject="bench.channel", sequence=123_456).SerializeToString()
    prebuilt = msg_proto()
    rows = [
        (f"PubMsg   encode ({len(pub_bytes)} B)", lambda: pub_msg().SerializeToString()),
        (f"PubMsg   decode ({len(pub_bytes)} B)", lambda: stan.decode(stan.PubMsg, pub_bytes)),
        ("PubMsg   decode + read 4 fields", lambda: _read(stan.decode(stan.PubMsg, pub_bytes))),
        (f"MsgProto encode ({len(msg_bytes)} B)", lambda: msg_proto().SerializeToString()),
        ("MsgProto serialize only (prebuilt)", prebuilt.SerializeToString),
        (f"MsgProto decode ({len(msg_bytes)} B)", lambda: stan.decode(stan.MsgProto, msg_bytes)),
        ("PubAck   encode", lambda: stan.PubAck(guid=GUID).SerializeToString()),
        (f"Ack      decode ({len(ack_bytes)} B)", lambda: stan.decode(stan.Ack, ack_bytes)),
    ]
    print(f"protobuf backend: {api_implementation.Type()}, Python {sys.version.split()[0]}")
    for label, func in rows:
        print(f"  {label:<36} {best_us(func):7.2f} µs")


if __name__ == "__main__":
    main()
