"""The NATS protocol's error texts, exactly as nats-server 2.9 puts them on the wire.

A `ProtocolViolation` names what the peer must be told (``err_text``, or None where
nats-server closes without a word) and whether the connection ends (``fatal``).
"""
from __future__ import annotations

UNKNOWN_PROTOCOL_OPERATION = "Unknown Protocol Operation"
AUTHORIZATION_VIOLATION = "Authorization Violation"
AUTHENTICATION_TIMEOUT = "Authentication Timeout"
MAXIMUM_PAYLOAD_VIOLATION = "Maximum Payload Violation"
MAX_CONTROL_LINE_EXCEEDED = "maximum control line exceeded"
STALE_CONNECTION = "Stale Connection"
INVALID_CLIENT_PROTOCOL = "invalid client protocol"
NO_RESPONDERS_REQUIRES_HEADERS = "no responders requires headers support"
MAXIMUM_CONNECTIONS_EXCEEDED = "maximum connections exceeded"
INVALID_SUBJECT = "Invalid Subject"
INVALID_PUBLISH_SUBJECT = "Invalid Publish Subject"
MAXIMUM_SUBSCRIPTIONS_EXCEEDED = "maximum subscriptions exceeded"


class ProtocolViolation:
    """An event: the byte stream broke the protocol. Parsing stops after a fatal one."""

    __slots__ = ("err_text", "fatal", "detail")

    def __init__(self, err_text: str | None, detail: str = "", fatal: bool = True):
        self.err_text = err_text
        self.fatal = fatal
        self.detail = detail

    def __repr__(self) -> str:
        return f"ProtocolViolation({self.err_text!r}, {self.detail!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ProtocolViolation) and other.err_text == self.err_text
                and other.fatal == self.fatal)


def err_line(text: str) -> bytes:
    """The wire form of an error: ``-ERR '<text>'\\r\\n``."""
    return b"-ERR '" + text.encode() + b"'\r\n"
