"""The client's exceptions. Each carries the exact STAN text in ``.text``.

``str(exc)`` is the text alone when the server sent it (so a test or a user can compare
it with `broker.protocol.stan.errors`), or the text followed by ``: <detail>`` when the
client knows more (which cluster ID, which subject, how long it waited).

    StanError
    ├── ServerError                  an ``error`` field of a response, verbatim
    ├── ConnectError                 the session could not be set up
    │   ├── NoServersError           no NATS server reachable (also a TimeoutError)
    │   ├── ConnectRequestTimeout    no STAN answer on the discover subject (TimeoutError)
    │   └── ConnectRefused           ConnectResponse.error (also a ServerError)
    ├── RequestTimeout               subscribe/unsubscribe/close request (TimeoutError)
    ├── PublishAckTimeout            no PubAck within pub_ack_wait (TimeoutError)
    ├── ConnectionClosed             the connection was closed (or lost) before
    ├── ConnectionLost               why the connection was lost (the lost callback's error)
    ├── InvalidSubscription          this subscription was unsubscribed or closed
    ├── ManualAckInAutoMode          Msg.ack() on an auto-ack subscription
    ├── NotSupportedByServer         sub.close() on a server without subCloseRequests
    ├── ProtocolError                a response that does not parse
    └── NatsError                    an error of nats-py itself, text kept
"""
from __future__ import annotations

from ..protocol.stan import errors as texts


class StanError(Exception):
    """Base of every error of the Runnel STAN client."""

    default_text = ""

    def __init__(self, text: str | None = None, detail: str | None = None):
        self.text = self.default_text if text is None else text
        self.detail = detail
        super().__init__(self.text if not detail else f"{self.text}: {detail}")


class ServerError(StanError):
    """The server refused: ``text`` is its ``error`` field, byte for byte."""


class ConnectError(StanError):
    """The STAN session could not be established."""


class NoServersError(ConnectError, TimeoutError):
    """No NATS server of the list could be reached within the connect timeout."""

    default_text = "nats: no servers available for connection"


class ConnectRequestTimeout(ConnectError, TimeoutError):
    """Nothing answered the ConnectRequest: no STAN server with this cluster ID there."""

    default_text = texts.CONNECT_REQUEST_TIMEOUT


class ConnectRefused(ServerError, ConnectError):
    """The server answered the ConnectRequest with an error (invalid or duplicate ID)."""


class RequestTimeout(StanError, TimeoutError):
    """A subscribe, unsubscribe or close request got no answer within connect_timeout."""


class PublishAckTimeout(StanError, TimeoutError):
    default_text = texts.PUBLISH_ACK_TIMEOUT


class ConnectionClosed(StanError):
    default_text = texts.CONNECTION_CLOSED


class ConnectionLost(StanError):
    """Given to the connection-lost callback: PING failure, or the server's own text
    (``client has been replaced or is no longer registered``)."""

    default_text = texts.PING_FAILURE


class InvalidSubscription(StanError):
    default_text = texts.INVALID_SUBSCRIPTION


class ManualAckInAutoMode(StanError):
    default_text = texts.MANUAL_ACK_IN_AUTO_MODE


class NotSupportedByServer(StanError):
    default_text = texts.NOT_SUPPORTED_BY_SERVER


class ProtocolError(StanError):
    """A response payload that is not the protobuf it should be."""


class NatsError(StanError):
    """nats-py raised; ``text`` is its message and ``__cause__`` the original."""


def subscribe_timeout(detail: str) -> RequestTimeout:
    return RequestTimeout(texts.SUBSCRIBE_REQUEST_TIMEOUT, detail)


def unsubscribe_timeout(detail: str) -> RequestTimeout:
    return RequestTimeout(texts.UNSUBSCRIBE_REQUEST_TIMEOUT, detail)


def close_timeout(detail: str) -> RequestTimeout:
    return RequestTimeout(texts.CLOSE_REQUEST_TIMEOUT, detail)


__all__ = [
    "StanError", "ServerError", "ConnectError", "NoServersError", "ConnectRequestTimeout",
    "ConnectRefused",
    "RequestTimeout", "PublishAckTimeout", "ConnectionClosed", "ConnectionLost",
    "InvalidSubscription", "ManualAckInAutoMode", "NotSupportedByServer", "ProtocolError",
    "NatsError", "texts",
]
