"""Bytes and handshakes of the streaming bench: STAN and JetStream over a plain socket.

Everything a load generator sends in the timed part of a run is encoded here before
the clock starts, and everything it reads is counted by scanning the received bytes
with ``bytes.count`` (publisher) or by a lean loop over ``MSG`` frames (consumer), so
the generator costs little Python per message. The fake servers of ``stan_fake``
build their pre-recorded answers with the same functions.

The handshakes (STAN ConnectRequest / SubscriptionRequest, JetStream stream and
consumer creation) are not timed; they go through `Link`, a small blocking client
on top of ``broker.protocol.nats.Parser``.
"""
from __future__ import annotations

import json
import random
import socket
import string
import time

from broker.protocol.nats.errors import ProtocolViolation
from broker.protocol.nats.events import Err, Msg, Ping, Pong
from broker.protocol.nats.parser import CLIENT, Parser
from broker.protocol.stan import (ConnectRequest, ConnectResponse, First, PubAck,
                                  SubscriptionRequest, SubscriptionResponse)

CLUSTER_ID = "test-cluster"
DISCOVER = f"_STAN.discover.{CLUSTER_ID}"
PAYLOAD = b"x" * 128
CHUNK_MSGS = 512  # publish frames per sendall: ~100 KB for STAN, ~80 KB for JetStream
ACK_SID = b"1"  # the publisher's subscription to its ack inbox
DELIVER_SID = b"2"  # the consumer's subscription to its delivery subject
MAX_INFLIGHT = 16384  # STAN MaxInflight / JetStream max_ack_pending of the consumer
ACK_WAIT_S = 30  # long enough that nothing is redelivered during a run
PING, PONG = b"PING\r\n", b"PONG\r\n"
_ALNUM = string.ascii_letters + string.digits


def nuid(size: int = 22) -> str:
    return "".join(random.choice(_ALNUM) for _ in range(size))


def connect_socket(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return sock


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + varint(len(value)) + value


# --- the untimed part: a blocking client for the handshakes --------------------------

class Link:
    """A NATS connection for requests: CONNECT, SUB, request/reply, PING/PONG."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, name: str = "bench"):
        self.sock = connect_socket(host, port, timeout)
        self.timeout = timeout
        self.parser = Parser(side=CLIENT)
        self.inbox = f"_INBOX.{nuid()}"
        self._next_sid = 100
        self._pongs = 0
        self.msgs: list[Msg] = []
        connect = {"verbose": False, "pedantic": False, "echo": True, "lang": "raw",
                   "version": "0", "protocol": 1, "headers": True, "no_responders": True,
                   "name": name}
        self.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self.sub(f"{self.inbox}.*", b"99")
        self.flush()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def sub(self, subject: str, sid: bytes) -> None:
        self.send(b"SUB %s %s\r\n" % (subject.encode(), sid))

    def _pump(self, deadline: float) -> None:
        self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        for event in self.parser.feed(data):
            if isinstance(event, Ping):
                self.send(PONG)
            elif isinstance(event, Msg):
                self.msgs.append(event)
            elif isinstance(event, Pong):
                self._pongs += 1
            elif isinstance(event, (Err, ProtocolViolation)):
                raise RuntimeError(f"server error: {event!r}")

    def flush(self) -> None:
        """PING and wait for its PONG: the server has processed everything sent so far."""
        want = self._pongs + 1
        self.send(PING)
        deadline = time.monotonic() + self.timeout
        while self._pongs < want:
            self._pump(deadline)
        self.sock.settimeout(self.timeout)

    def request(self, subject: str, payload: bytes, timeout: float | None = None) -> Msg | None:
        """Publish with a fresh reply subject; the reply, or None after ``timeout``."""
        reply = f"{self.inbox}.{nuid(8)}".encode()
        self.send(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply, len(payload), payload))
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                for index, msg in enumerate(self.msgs):
                    if msg.subject == reply:
                        del self.msgs[index]
                        return msg
                if time.monotonic() >= deadline:
                    return None
                try:
                    self._pump(deadline)
                except (TimeoutError, socket.timeout):
                    return None
        finally:
            self.sock.settimeout(self.timeout)

    def close(self) -> None:
        self.sock.close()


def stan_connect(link: Link, client_id: str, wait: float = 10.0) -> tuple[ConnectResponse, bytes]:
    """Register a STAN client (protocol 1, with a connID); retried until the server answers."""
    conn_id = nuid().encode()
    request = ConnectRequest(clientID=client_id, heartbeatInbox=f"{link.inbox}.hb",
                             protocol=1, connID=conn_id, pingInterval=5, pingMaxOut=88)
    deadline = time.monotonic() + wait
    while True:
        msg = link.request(DISCOVER, request.SerializeToString(), timeout=1.0)
        # A 503 no-responders status (HMSG, not a Msg) or nothing: the server is starting.
        if msg is not None and not msg.headers:
            response = ConnectResponse.FromString(msg.payload)
            if response.error:
                raise RuntimeError(f"STAN connect: {response.error}")
            return response, conn_id
        if time.monotonic() > deadline:
            raise TimeoutError("no STAN ConnectResponse")
        time.sleep(0.05)


def stan_subscribe(link: Link, response: ConnectResponse, client_id: str, channel: str,
                   inbox: str) -> str:
    """A plain subscription from the first message, MaxInflight 16384; its ack inbox."""
    request = SubscriptionRequest(clientID=client_id, subject=channel, inbox=inbox,
                                  maxInFlight=MAX_INFLIGHT, ackWaitInSecs=ACK_WAIT_S,
                                  startPosition=First)
    msg = link.request(response.subRequests, request.SerializeToString())
    if msg is None:
        raise TimeoutError("no STAN SubscriptionResponse")
    reply = SubscriptionResponse.FromString(msg.payload)
    if reply.error:
        raise RuntimeError(f"STAN subscribe: {reply.error}")
    return reply.ackInbox


def js_request(link: Link, subject: str, body: dict, wait: float = 10.0) -> dict:
    """A JetStream API request, retried while JetStream does not answer yet."""
    deadline = time.monotonic() + wait
    while True:
        msg = link.request(subject, json.dumps(body).encode(), timeout=1.0)
        if msg is not None and not msg.headers:  # not a 503 no-responders status
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer to {subject}")
        time.sleep(0.05)
    answer = json.loads(msg.payload)
    if "error" in answer:
        raise RuntimeError(f"{subject}: {answer['error']}")
    return answer


def js_create_stream(link: Link, stream: str, subject: str) -> dict:
    """A file stream, one replica, every other setting at its default."""
    return js_request(link, f"$JS.API.STREAM.CREATE.{stream}",
                      {"name": stream, "subjects": [subject], "storage": "file",
                       "num_replicas": 1})


def js_create_consumer(link: Link, stream: str, durable: str, deliver_subject: str) -> dict:
    """A durable push consumer with explicit acks: STAN's subscription, as JetStream has it."""
    config = {"durable_name": durable, "deliver_subject": deliver_subject,
              "deliver_policy": "all", "ack_policy": "explicit",
              "max_ack_pending": MAX_INFLIGHT, "ack_wait": ACK_WAIT_S * 1_000_000_000}
    return js_request(link, f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                      {"stream_name": stream, "config": config})


# --- the timed part: pre-encoded publish frames -------------------------------------

class StanPublisher:
    """The identity of a STAN publisher and the exact bytes of its PubMsg frames.

    A PubMsg is clientID, guid, subject, data, connID (stan.go sets both IDs), in
    field order. The guid is 22 characters, like stan.go's nuid: a random 12-character
    prefix and a 10-digit message number, so every frame has the same size.
    """

    def __init__(self, pub_subject: str, ack_inbox: str, client_id: str, conn_id: bytes,
                 channel: str, guid_prefix: str | None = None, data: bytes = PAYLOAD):
        self.ack_inbox = ack_inbox.encode()
        self.guid_prefix = (guid_prefix or nuid(12)).encode()
        head = _field(0x0A, client_id.encode()) + b"\x12\x16"
        tail = _field(0x1A, channel.encode()) + _field(0x2A, data) + _field(0x32, conn_id)
        size = len(head) + 22 + len(tail)
        line = b"PUB %s.%s %s %d\r\n" % (pub_subject.encode(), channel.encode(),
                                          self.ack_inbox, size)
        self._fmt = (line + head + self.guid_prefix).replace(b"%", b"%%") + b"%010d" + (
            tail + b"\r\n").replace(b"%", b"%%")
        self.frame_size = len(self._fmt % 0)
        self.ok_ack_header = b"MSG %s %s 24\r\n" % (self.ack_inbox, ACK_SID)  # PubAck{guid}

    def chunks(self, count: int, chunk: int = CHUNK_MSGS) -> list[tuple[bytes, int]]:
        fmt = self._fmt
        return [(b"".join([fmt % i for i in range(start, min(count, start + chunk))]),
                 min(count, start + chunk) - start) for start in range(0, count, chunk)]

    def guid(self, index: int) -> bytes:
        return self.guid_prefix + b"%010d" % index

    def recorded_acks(self, count: int) -> bytes:
        """What a server answers to ``count`` publishes: PubAck{guid} on the ack inbox."""
        head = b"MSG %s %s 24\r\n\x0a\x16%s" % (self.ack_inbox, ACK_SID, self.guid_prefix)
        fmt = head.replace(b"%", b"%%") + b"%010d\r\n"
        return b"".join([fmt % i for i in range(count)])


def check_pub_ack(publisher: StanPublisher, payload: bytes, index: int) -> None:
    ack = PubAck.FromString(payload)
    if ack.error or ack.guid.encode() != publisher.guid(index):
        raise RuntimeError(f"unexpected PubAck {ack!r} for message {index}")


class JsPublisher:
    """Core NATS publishes on the stream's subject with a reply inbox: JetStream's acked
    publish. Every frame is the same, so one chunk is encoded once and sent again."""

    def __init__(self, subject: str, ack_inbox: str, data: bytes = PAYLOAD):
        self.ack_inbox = ack_inbox.encode()
        self._frame = b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), self.ack_inbox,
                                                   len(data), data)
        self.frame_size = len(self._frame)

    def chunks(self, count: int, chunk: int = CHUNK_MSGS) -> list[tuple[bytes, int]]:
        full, rest = divmod(count, chunk)
        block = self._frame * chunk
        return [(block, chunk)] * full + ([(self._frame * rest, rest)] if rest else [])

    def recorded_acks(self, count: int, stream: str = "BENCH") -> bytes:
        out = []
        for seq in range(1, count + 1):
            body = b'{"stream":"%s","seq":%d}' % (stream.encode(), seq)
            out.append(b"MSG %s %s %d\r\n%s\r\n" % (self.ack_inbox, ACK_SID, len(body), body))
        return b"".join(out)


# --- the timed part: counting what comes back ---------------------------------------

class AckScan:
    """Counts publish acks in the received byte stream with ``bytes.count``, no parsing.

    Every ack starts with ``MSG `` (the payloads, a PubAck's alphanumeric guid or
    JetStream's ``{"stream":..,"seq":..}``, cannot contain it). For STAN an ack is good
    when its header is exactly ``MSG <inbox> 1 24``: a 24-byte PubAck holds the guid
    and no error. For JetStream an ack is bad when it carries ``"error"``. A status
    message (``HMSG``, e.g. 503 no responders) is bad too. A server PING is found the
    same way and answered. Patterns split across two reads are found in the seam.
    """

    def __init__(self, ok_header: bytes | None = None, error_marker: bytes | None = None):
        self.ok_header = ok_header
        self.error_marker = error_marker
        patterns = [b"MSG ", PING, b"HMSG"] + [p for p in (ok_header, error_marker) if p]
        self._keep = max(len(p) for p in patterns) - 1
        self._tail = b""
        self.acks = 0
        self.bad = 0
        self.sample_bad = b""

    def _count(self, pattern: bytes, buf, size: int) -> int:
        keep = len(pattern) - 1  # a match across the seam has at most this many bytes on a side
        seam = self._tail[-keep:] + bytes(buf[:min(size, keep)])
        return buf.count(pattern, 0, size) + (seam.count(pattern) if self._tail else 0)

    def feed(self, buf, size: int) -> int:
        """Scan ``buf[:size]``; return the number of server PINGs in it."""
        frames = self._count(b"MSG ", buf, size)  # an HMSG matches too: a reply, but bad
        pings = self._count(PING, buf, size)
        if self.ok_header is not None:
            bad = frames - self._count(self.ok_header, buf, size)
        else:
            bad = self._count(b"HMSG", buf, size)
        if self.error_marker is not None:
            bad += self._count(self.error_marker, buf, size)
        if bad and not self.sample_bad:
            self.sample_bad = bytes(buf[:min(size, 300)])
        self.acks += frames
        self.bad += bad
        if size >= self._keep:
            self._tail = bytes(buf[size - self._keep:size])
        else:
            self._tail = (self._tail + bytes(buf[:size]))[-self._keep:]
        return pings


class _MsgScan:
    """A lean parser of a stream of MSG frames: per frame one ``find``, one ``rfind``,
    an ``int`` and a few slices. Answers PINGs; a partial frame waits for more bytes."""

    def __init__(self, count: int):
        self.rest = b""
        self.seen = bytearray(count + 2)
        self.unique = 0
        self.redelivered = 0
        self.other = 0  # deliveries with a sequence beyond the run's N (should not happen)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.rest + data if self.rest else data
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        seen = self.seen
        limit = len(seen)
        find, rfind = buf.find, buf.rfind
        while True:
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            if buf[pos] == 77:  # M: MSG <subject> <sid> [reply] <size>
                sp = rfind(b" ", pos, eol)
                end = eol + 4 + int(buf[sp + 1:eol])
                if end > n:
                    break
                seq = self.handle(buf, pos, sp, eol + 2, out)
                if seq < limit:
                    if seen[seq]:
                        self.redelivered += 1
                    else:
                        seen[seq] = 1
                        self.unique += 1
                else:
                    self.other += 1
                pos = end
            else:
                line = buf[pos:eol]
                if line == b"PING":
                    out.append(PONG)
                elif line.startswith(b"HMSG"):  # a status (heartbeat, flow control): skip
                    end = eol + 4 + int(line.rsplit(b" ", 1)[1])
                    if end > n:
                        break
                    pos = end
                    continue
                elif line.startswith(b"-ERR"):
                    raise RuntimeError(f"server error: {line.decode(errors='replace')}")
                pos = eol + 2
        self.rest = buf[pos:]
        return out


class StanConsumerScan(_MsgScan):
    """MsgProto deliveries: read the sequence (field 1, the first in the payload) and
    queue the pre-encoded ``Ack{subject, sequence}`` frame for it."""

    def __init__(self, count: int, ack_inbox: str, channel: str):
        super().__init__(count)
        self._ack_head = b"PUB %s " % ack_inbox.encode()
        self._ack_body = _field(0x0A, channel.encode()) + b"\x10"
        self.acks = [b""] + [self.ack_frame(seq) for seq in range(1, count + 1)]

    def ack_frame(self, seq: int) -> bytes:
        body = self._ack_body + varint(seq)
        return b"%s%d\r\n%s\r\n" % (self._ack_head, len(body), body)

    def handle(self, buf: bytes, pos: int, sp: int, start: int, out: list) -> int:
        if buf[start] == 0x08:
            seq = buf[start + 1]
            if seq >= 0x80:
                seq &= 0x7F
                shift, i = 7, start + 2
                while True:
                    byte = buf[i]
                    seq |= (byte & 0x7F) << shift
                    if byte < 0x80:
                        break
                    shift += 7
                    i += 1
        else:  # not in field order: decode it properly
            from broker.protocol.stan import MsgProto
            size = int(buf[sp + 1:start - 2])
            seq = MsgProto.FromString(buf[start:start + size]).sequence
        acks = self.acks
        out.append(acks[seq] if seq < len(acks) else self.ack_frame(seq))
        return seq


class JsConsumerScan(_MsgScan):
    """Push-consumer deliveries: take the reply subject ($JS.ACK...) from the header,
    ack with an empty PUB to it, and read the stream sequence from its tokens."""

    def handle(self, buf: bytes, pos: int, sp: int, start: int, out: list) -> int:
        reply = buf[buf.rfind(b" ", pos, sp) + 1:sp]
        out.append(b"PUB " + reply + b" 0\r\n\r\n")
        tokens = reply.split(b".")
        # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>... or, with domain and
        # account hash, $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>...
        return int(tokens[5] if len(tokens) == 9 else tokens[7])


def recorded_stan_msgs(inbox: str, channel: str, count: int) -> bytes:
    """What a STAN server delivers: MsgProto{sequence, subject, data, timestamp}."""
    from broker.protocol.stan import MsgProto
    now = time.time_ns()
    out = []
    for seq in range(1, count + 1):
        payload = MsgProto(sequence=seq, subject=channel, data=PAYLOAD,
                           timestamp=now + seq).SerializeToString()
        out.append(b"MSG %s %s %d\r\n%s\r\n" % (inbox.encode(), DELIVER_SID, len(payload),
                                                payload))
    return b"".join(out)


def recorded_js_msgs(subject: str, stream: str, durable: str, count: int) -> bytes:
    """What a push consumer delivers: the message with a $JS.ACK reply subject."""
    now = time.time_ns()
    return b"".join(
        b"MSG %s %s $JS.ACK.%s.%s.1.%d.%d.%d.%d %d\r\n%s\r\n" % (
            subject.encode(), DELIVER_SID, stream.encode(), durable.encode(), seq, seq,
            now + seq, count - seq, len(PAYLOAD), PAYLOAD)
        for seq in range(1, count + 1))

