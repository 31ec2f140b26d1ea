"""STAN protobuf messages: exact bytes, proto3 rules, malformed input, round trips.

Runs under whichever protobuf backend is active; test_stan_backends.py runs this file
again with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python.
"""
from __future__ import annotations

import os

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.internal import api_implementation
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.protocol import stan
from broker.protocol.stan import DecodeError, decode

# Reference §2.3, transcribed independently of protocol.proto: name, number, type.
TABLE = {
    "PubMsg": [("clientID", 1, "string"), ("guid", 2, "string"), ("subject", 3, "string"),
               ("reply", 4, "string"), ("data", 5, "bytes"), ("connID", 6, "bytes"),
               ("sha256", 10, "bytes")],
    "PubAck": [("guid", 1, "string"), ("error", 2, "string")],
    "MsgProto": [("sequence", 1, "uint64"), ("subject", 2, "string"), ("reply", 3, "string"),
                 ("data", 4, "bytes"), ("timestamp", 5, "int64"), ("redelivered", 6, "bool"),
                 ("redeliveryCount", 7, "uint32"), ("CRC32", 10, "uint32")],
    "Ack": [("subject", 1, "string"), ("sequence", 2, "uint64")],
    "ConnectRequest": [("clientID", 1, "string"), ("heartbeatInbox", 2, "string"),
                       ("protocol", 3, "int32"), ("connID", 4, "bytes"),
                       ("pingInterval", 5, "int32"), ("pingMaxOut", 6, "int32")],
    "ConnectResponse": [("pubPrefix", 1, "string"), ("subRequests", 2, "string"),
                        ("unsubRequests", 3, "string"), ("closeRequests", 4, "string"),
                        ("error", 5, "string"), ("subCloseRequests", 6, "string"),
                        ("pingRequests", 7, "string"), ("pingInterval", 8, "int32"),
                        ("pingMaxOut", 9, "int32"), ("protocol", 10, "int32"),
                        ("publicKey", 100, "string")],
    "SubscriptionRequest": [("clientID", 1, "string"), ("subject", 2, "string"),
                            ("qGroup", 3, "string"), ("inbox", 4, "string"),
                            ("maxInFlight", 5, "int32"), ("ackWaitInSecs", 6, "int32"),
                            ("durableName", 7, "string"), ("startPosition", 10, "enum"),
                            ("startSequence", 11, "uint64"), ("startTimeDelta", 12, "int64")],
    "SubscriptionResponse": [("ackInbox", 2, "string"), ("error", 3, "string")],
    "UnsubscribeRequest": [("clientID", 1, "string"), ("subject", 2, "string"),
                           ("inbox", 3, "string"), ("durableName", 4, "string")],
    "CloseRequest": [("clientID", 1, "string")],
    "CloseResponse": [("error", 1, "string")],
    "Ping": [("connID", 1, "bytes")],
    "PingResponse": [("error", 1, "string")],
}
TYPES = {cls.DESCRIPTOR.name: cls for cls in stan.MESSAGE_TYPES}
INT_RANGES = {"int32": (-2**31, 2**31 - 1), "enum": (-2**31, 2**31 - 1),
              "int64": (-2**63, 2**63 - 1), "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1)}


def _varint(value: int) -> bytes:
    value &= 2**64 - 1  # negative int32/int64/enum: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def reference_encode(name: str, values: dict) -> bytes:
    """A proto3 encoder written from the reference table alone."""
    out = bytearray()
    for field, number, kind in TABLE[name]:
        value = values.get(field)
        if not value:  # proto3: defaults are not encoded
            continue
        if kind in ("string", "bytes"):
            raw = value.encode() if kind == "string" else value
            out += _varint(number << 3 | 2) + _varint(len(raw)) + raw
        else:
            out += _varint(number << 3) + _varint(int(value))
    return bytes(out)


def field_values(name: str) -> st.SearchStrategy[dict]:
    strategies = {}
    for field, _, kind in TABLE[name]:
        if kind == "string":
            strategies[field] = st.text()
        elif kind == "bytes":
            strategies[field] = st.binary()
        elif kind == "bool":
            strategies[field] = st.booleans()
        else:
            strategies[field] = st.integers(*INT_RANGES[kind])
    return st.fixed_dictionaries({}, optional=strategies)


def test_backend_is_the_requested_one():
    wanted = os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION")
    if wanted:
        assert api_implementation.Type() == wanted


def test_the_proto_has_exactly_the_reference_messages_and_fields():
    file_proto = descriptor_pb2.FileDescriptorProto()
    stan.MsgProto.DESCRIPTOR.file.CopyToProto(file_proto)
    assert (file_proto.package, file_proto.syntax) == ("pb", "proto3")
    assert sorted(m.name for m in file_proto.message_type) == sorted(TABLE)
    for message in file_proto.message_type:
        got = sorted((f.name, f.number, _kind(f)) for f in message.field)
        assert got == sorted(TABLE[message.name]), message.name
        assert all(f.label == f.LABEL_OPTIONAL and not f.HasField("proto3_optional")
                   for f in message.field)
        assert not message.oneof_decl and not message.nested_type


def _kind(field) -> str:
    name = descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)
    return name.removeprefix("TYPE_").lower()


def test_start_position_enum():
    assert dict(stan.StartPosition.items()) == {
        "NewOnly": 0, "LastReceived": 1, "TimeDeltaStart": 2, "SequenceStart": 3, "First": 4}
    assert (stan.NewOnly, stan.LastReceived, stan.TimeDeltaStart, stan.SequenceStart,
            stan.First) == (0, 1, 2, 3, 4)
    assert [stan.is_valid_start_position(v) for v in (-1, 0, 4, 5)] == [
        False, True, True, False]


# --- the hand-computed examples of §2.1 --------------------------------------------------

def test_ack_example_bytes():
    encoded = stan.Ack(subject="foo", sequence=5).SerializeToString()
    assert encoded == bytes.fromhex("0a 03 66 6f 6f 10 05")
    assert decode(stan.Ack, encoded) == stan.Ack(subject="foo", sequence=5)


def test_puback_example_bytes():
    assert stan.PubAck(guid="G1").SerializeToString() == bytes.fromhex("0a 02 47 31")


def test_connect_response_public_key_has_two_byte_tag():
    encoded = stan.ConnectResponse(publicKey="k").SerializeToString()
    assert encoded == bytes.fromhex("a2 06 01") + b"k"


def test_fields_are_written_in_number_order():
    msg = stan.MsgProto(CRC32=1, sequence=1, subject="foo", data=b"hi",
                        timestamp=1700000000000000000)
    encoded = msg.SerializeToString()
    assert encoded == reference_encode("MsgProto", {
        "sequence": 1, "subject": "foo", "data": b"hi",
        "timestamp": 1700000000000000000, "CRC32": 1})
    assert encoded.startswith(bytes.fromhex("08 01 12 03 66 6f 6f 22 02 68 69 28"))


@pytest.mark.parametrize("cls", [stan.PingResponse, stan.CloseResponse, stan.PubAck,
                                 stan.SubscriptionResponse, stan.ConnectResponse])
def test_ok_responses_are_zero_bytes_and_empty_decodes_to_ok(cls):
    assert cls().SerializeToString() == b""
    assert cls(error="").SerializeToString() == b""
    assert decode(cls, b"").error == ""


def test_every_message_decodes_from_empty_payload_as_all_defaults():
    for cls in stan.MESSAGE_TYPES:
        assert decode(cls, b"") == cls()


def test_negative_start_time_delta_is_a_ten_byte_varint():
    encoded = stan.SubscriptionRequest(startTimeDelta=-1).SerializeToString()
    assert encoded == bytes.fromhex("60") + b"\xff" * 9 + b"\x01"
    assert decode(stan.SubscriptionRequest, encoded).startTimeDelta == -1
    encoded = stan.SubscriptionRequest(startTimeDelta=-2**63).SerializeToString()
    assert len(encoded) == 11
    assert decode(stan.SubscriptionRequest, encoded).startTimeDelta == -2**63


def test_negative_int32_is_a_ten_byte_varint():
    # ConnectRequest.pingInterval < 0 means milliseconds in the Go tests.
    encoded = stan.ConnectRequest(pingInterval=-100).SerializeToString()
    assert encoded == b"\x28" + _varint(-100)
    assert len(encoded) == 11
    assert decode(stan.ConnectRequest, encoded).pingInterval == -100


def test_start_position_is_an_open_enum():
    # Out-of-range values survive decoding so the server can answer
    # "stan: invalid start position".
    for value in (5, 99, -1):
        encoded = b"\x50" + _varint(value)
        assert decode(stan.SubscriptionRequest, encoded).startPosition == value
    assert stan.SubscriptionRequest(startPosition=stan.First).SerializeToString() == b"\x50\x04"


def test_accepts_bytearray_and_memoryview():
    encoded = bytes.fromhex("0a 03 66 6f 6f 10 05")
    frame = b"junk" + encoded + b"junk"
    for payload in (bytearray(encoded), memoryview(frame)[4:-4]):
        assert decode(stan.Ack, payload) == stan.Ack(subject="foo", sequence=5)


# --- unknown fields ----------------------------------------------------------------------

UNKNOWN = [
    bytes.fromhex("78 2a"),                     # field 15, varint
    bytes.fromhex("81 01") + bytes(8),          # field 16, fixed64
    bytes.fromhex("8a 01 03") + b"xyz",         # field 17, length-delimited
    bytes.fromhex("95 01") + bytes(4),          # field 18, fixed32
    bytes.fromhex("9b 01 08 01 9c 01"),         # field 19, group holding a varint
    bytes.fromhex("a0 1f 01"),                  # field 500, varint
]


@pytest.mark.parametrize("unknown", UNKNOWN)
def test_unknown_fields_are_ignored(unknown):
    known = stan.Ack(subject="foo", sequence=5)
    for payload in (unknown + known.SerializeToString(),
                    known.SerializeToString() + unknown,
                    b"\x0a\x03foo" + unknown + b"\x10\x05"):
        got = decode(stan.Ack, payload)
        assert (got.subject, got.sequence) == ("foo", 5)


def test_newer_fields_decode_in_an_older_message():
    # A message with fields an older reader does not know: only field 1 is read.
    newer = stan.SubscriptionRequest(clientID="me", subject="foo", maxInFlight=1024,
                                     startPosition=stan.First, startTimeDelta=-5)
    older = decode(stan.CloseRequest, newer.SerializeToString())
    assert older.clientID == "me"


def test_known_field_with_the_wrong_wire_type_is_treated_as_unknown():
    # Ack.sequence (varint) sent length-delimited. gogo-protobuf would reject the
    # message; Python protobuf skips the field. Documented in DESIGN.md.
    assert decode(stan.Ack, bytes.fromhex("0a 03 66 6f 6f 12 01 00")).sequence == 0


# --- malformed input ---------------------------------------------------------------------

MALFORMED = [
    b"\x0a",                 # tag without length
    b"\x0a\x05ab",           # string shorter than its length
    b"\x0a\x03fo",           # idem
    b"\x10",                 # varint field without value
    b"\x10\xff",             # varint cut in the middle
    b"\xff",                 # tag cut in the middle
    b"\x00",                 # field number 0
    b"\x0e",                 # wire type 6
    b"\x0f",                 # wire type 7
    b"\x0c",                 # end-group without start
    b"\x9b\x01\x08\x01",     # group never closed
    b"\x10" + b"\xff" * 10 + b"\x01",  # varint longer than ten bytes
    b"\x0a\x02\xff\xfe",     # string field that is not UTF-8
    b"\x0a\x01\x80",         # lone continuation byte
    b"\x0a\x03\xed\xa0\x80",  # UTF-8-encoded surrogate
]


@pytest.mark.parametrize("payload", MALFORMED)
def test_malformed_payload_raises_decode_error(payload):
    with pytest.raises(DecodeError):
        decode(stan.Ack, payload)


def test_bytes_fields_accept_any_bytes():
    assert decode(stan.Ping, b"\x0a\x02\xff\xfe").connID == b"\xff\xfe"


def test_every_cut_inside_a_field_raises_decode_error():
    encoded = stan.Ack(subject="foo", sequence=300).SerializeToString()  # 0a 03 foo 10 ac 02
    field_ends = {0, 5, len(encoded)}
    for cut in range(len(encoded) + 1):
        if cut in field_ends:
            decode(stan.Ack, encoded[:cut])
        else:
            with pytest.raises(DecodeError):
                decode(stan.Ack, encoded[:cut])


@pytest.mark.parametrize("cls", stan.MESSAGE_TYPES, ids=lambda c: c.DESCRIPTOR.name)
@settings(max_examples=300)
@given(payload=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error_only(cls, payload):
    try:
        decode(cls, payload)
    except DecodeError:
        pass


@pytest.mark.parametrize("name", sorted(TABLE))
@settings(max_examples=100)
@given(data=st.data())
def test_mutated_valid_payloads_decode_or_raise_decode_error_only(name, data):
    encoded = bytearray(reference_encode(name, data.draw(field_values(name))))
    if encoded:
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
        encoded = encoded[:data.draw(st.integers(0, len(encoded)))]
    try:
        decode(TYPES[name], bytes(encoded))
    except DecodeError:
        pass


# --- round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TABLE))
@settings(max_examples=150)
@given(data=st.data())
def test_round_trip_matches_the_reference_encoding(name, data):
    values = data.draw(field_values(name))
    msg = TYPES[name](**values)
    encoded = msg.SerializeToString()
    assert encoded == reference_encode(name, values)
    again = decode(TYPES[name], encoded)
    assert again == msg
    for field, _, _ in TABLE[name]:
        assert getattr(again, field) == values.get(field, getattr(TYPES[name](), field))
