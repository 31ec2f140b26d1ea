"""STAN error texts, copied exactly from reference §2.18.

The server puts these in the ``error`` field of a ConnectResponse, PubAck,
SubscriptionResponse, CloseResponse or PingResponse. Keep them byte-for-byte: clients
compare them as strings (typos such as "alreay" are in the original and stay).
"""
from __future__ import annotations

# --- Server -> client, on the wire ---------------------------------------------------
INVALID_CONNECTION_REQUEST = "stan: invalid connection request"
INVALID_CLIENT_ID = ("stan: invalid clientID: only alphanumeric and `-` or `_` "
                     "characters allowed")
CLIENT_ID_ALREADY_REGISTERED = "stan: clientID already registered"
INVALID_PUBLISH_REQUEST = "stan: invalid publish request"
INVALID_SUBSCRIPTION_REQUEST = "stan: invalid subscription request"
CLIENT_ID_MISSING = "stan: clientID missing"
INVALID_ACK_WAIT = "stan: invalid ack wait time, should be >= 1s"
INVALID_MAX_INFLIGHT = "stan: invalid MaxInflight, should be >= 1"
INVALID_START_POSITION = "stan: invalid start position"
INVALID_SUBJECT = "stan: invalid subject"
UNKNOWN_CLIENT_ID = "stan: unknown clientID"
DUPLICATE_DURABLE = "stan: duplicate durable registration"
INVALID_DURABLE_QUEUE_NAME = ("stan: durable name of a durable queue subscriber can't "
                              "contain the character ':'")
INVALID_UNSUBSCRIBE_REQUEST = "stan: invalid unsubscribe request"
UNKNOWN_CHANNEL = "stan: unknown channel"
INVALID_SUBSCRIPTION = "stan: invalid subscription"
INVALID_CLOSE_REQUEST = "stan: invalid close request"
CHANNEL_BEING_DELETED = "stan: channel is being deleted"
TOO_MANY_CHANNELS = "too many channels"
TOO_MANY_SUBSCRIPTIONS = "too many subscriptions per channel"
CLIENT_REPLACED = "client has been replaced or is no longer registered"
_CHANNEL_CASE_CONFLICT = ("rejecting channel %s because channel %s alreay exists "
                          "(different cases not allowed)")


def channel_case_conflict(channel: str, existing: str) -> str:
    """``rejecting channel %q because channel %q alreay exists (...)`` (Go's %q)."""
    return _CHANNEL_CASE_CONFLICT % (go_quote(channel), go_quote(existing))


# --- Server start-up failures, never on the wire ---------------------------------------
NO_CONFIGURED_CHANNEL = "stan: no configured channel"
CANNOT_RESTART_CLUSTERED = ("stan: cannot restart server in clustered mode if it was "
                            "not previously clustered")

# --- Client side (stan.go), for the Runnel client and tests ----------------------------
CONNECT_REQUEST_TIMEOUT = "stan: connect request timeout (possibly wrong cluster ID?)"
CLOSE_REQUEST_TIMEOUT = "stan: close request timeout"
SUBSCRIBE_REQUEST_TIMEOUT = "stan: subscribe request timeout"
UNSUBSCRIBE_REQUEST_TIMEOUT = "stan: unsubscribe request timeout"
CONNECTION_CLOSED = "stan: connection closed"
PUBLISH_ACK_TIMEOUT = "stan: publish ack timeout"
MALFORMED_ACK = "stan: malformed ack"
# INVALID_SUBSCRIPTION (above) is also stan.go's client-side text.
INVALID_CONNECTION = "stan: invalid connection"
MANUAL_ACK_IN_AUTO_MODE = "stan: cannot manually ack in auto-ack mode"
NIL_MESSAGE = "stan: nil message"
NOT_SUPPORTED_BY_SERVER = "stan: not supported by server"
PING_FAILURE = "stan: connection lost due to PING failure"

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (the ``%q`` verb) for a valid Unicode string.

    Printable characters stay as they are (Python's ``isprintable`` stands in for Go's
    ``unicode.IsPrint``; both exclude non-ASCII spaces and format characters); the
    rest become ``\\a``-style, ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN`` escapes.
    """
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate is not a valid rune in Go
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
