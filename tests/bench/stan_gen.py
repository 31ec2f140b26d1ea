"""The streaming load generator: one role, one protocol, one process.

    python -m tests.bench.stan_gen ROLE PROTO HOST PORT N [--window W] [--channel C] [--fake]

ROLE  pub    acked publisher: keeps at most W publishes unacknowledged, counts acks
      sub    consumer: acks every delivery, counts distinct sequences until it has N
      send   (ceiling) the publisher's sending half alone, into a sink: no acks
      count  (ceiling) the publisher's ack-counting half alone, fed recorded acks
PROTO stan   STAN over core NATS (Runnel)
      js     JetStream (nats-server -js): stream subject = channel, stream = CHANNEL

Everything sent in the timed part is encoded before the clock starts (``stan_wire``).
``--fake`` skips the STAN / JetStream handshakes and uses the fixed identities that
the fake servers of ``stan_fake`` answer to (the generator-ceiling runs).

Talks to the parent with ``child``: "ready [t]", then (pub, send, count, fake sub)
waits for "go", then prints one JSON line.
"""
from __future__ import annotations

import argparse
import socket
import sys
import time

from . import child, stan_wire
from .stan_wire import ACK_SID, DELIVER_SID, PING, PONG

TIMEOUT_S = 60.0
CONNECT = (b'CONNECT {"verbose":false,"pedantic":false,"echo":true,"lang":"raw",'
           b'"version":"0","protocol":1,"headers":true,"no_responders":true}\r\n')

# The fixed identities of --fake runs, shared with stan_fake.
FAKE_ACK_INBOX = "_INBOX.FAKEACKS"
FAKE_DELIVER = "_INBOX.FAKEDELIVER"
FAKE_STAN_ACK_INBOX = "_INBOX.FAKESTANACKS"
FAKE_DURABLE = "C"


def fake_publisher(proto: str, channel: str):
    if proto == "stan":
        return stan_wire.StanPublisher(f"_STAN.pub.{stan_wire.CLUSTER_ID}", FAKE_ACK_INBOX,
                                       "bench-pub", b"C" * 22, channel,
                                       guid_prefix="FAKEGUID0000")
    return stan_wire.JsPublisher(channel, FAKE_ACK_INBOX)


def _raw_handshake(host: str, port: int, subject: str, sid: bytes) -> socket.socket:
    """--fake: CONNECT, SUB, PING and the PONG; nothing else."""
    sock = stan_wire.connect_socket(host, port, TIMEOUT_S)
    sock.sendall(CONNECT + b"SUB %s %s\r\n" % (subject.encode(), sid) + PING)
    _wait_pong(sock)
    return sock


def _wait_pong(sock: socket.socket) -> None:
    buf = b""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if line == b"PONG":
                if buf:
                    raise RuntimeError(f"unexpected bytes after PONG: {buf[:80]!r}")
                return
            if line == b"PING":
                sock.sendall(PONG)
            elif line.startswith(b"-ERR"):
                raise RuntimeError(f"server error: {line.decode(errors='replace')}")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        buf += data


def _clean(link: stan_wire.Link) -> socket.socket:
    """The link's socket for the timed part: nothing may be left half-read."""
    if link.parser.buffered_bytes:
        raise RuntimeError("bytes left over from the handshake")
    link.sock.settimeout(TIMEOUT_S)
    return link.sock


def _publisher_setup(args):
    if args.fake:
        publisher = fake_publisher(args.proto, args.channel)
        sock = _raw_handshake(args.host, args.port, FAKE_ACK_INBOX, ACK_SID)
        return sock, publisher
    link = stan_wire.Link(args.host, args.port, TIMEOUT_S, name=f"bench-{args.role}")
    ack_inbox = f"_INBOX.{stan_wire.nuid()}"
    if args.proto == "stan":
        client_id = f"bench-pub-{stan_wire.nuid(8)}"
        response, conn_id = stan_wire.stan_connect(link, client_id)
        ack_inbox = f"_STAN.acks.{stan_wire.nuid()}"
        publisher = stan_wire.StanPublisher(response.pubPrefix, ack_inbox, client_id,
                                            conn_id, args.channel)
    else:
        publisher = stan_wire.JsPublisher(args.channel, ack_inbox)
    link.sub(ack_inbox, ACK_SID)
    link.flush()
    return _clean(link), publisher


def _scanner(proto: str, publisher) -> stan_wire.AckScan:
    if proto == "stan":
        return stan_wire.AckScan(ok_header=publisher.ok_ack_header)
    return stan_wire.AckScan(error_marker=b'"error"')


def _check_first_ack(proto: str, publisher, first: bytes) -> str:
    """Decode the first ack properly (the scan only counted it): '' when it is right."""
    from broker.protocol.nats.events import Msg
    from broker.protocol.nats.parser import CLIENT, Parser
    msgs = [e for e in Parser(side=CLIENT).feed(first) if isinstance(e, Msg)]
    if not msgs:
        return f"first ack not parsed: {first[:120]!r}"
    try:
        if proto == "stan":
            stan_wire.check_pub_ack(publisher, msgs[0].payload, 0)
        elif b'"seq":' not in msgs[0].payload or b'"error"' in msgs[0].payload:
            return f"unexpected JetStream ack {msgs[0].payload[:200]!r}"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return str(exc)
    return ""


def publish(args) -> dict:
    sock, publisher = _publisher_setup(args)
    with sock:
        count, window = args.count, args.window
        chunks = publisher.chunks(count, min(stan_wire.CHUNK_MSGS, window))
        scan = _scanner(args.proto, publisher)
        buf = bytearray(1 << 20)
        first = b""
        child.ready()
        child.wait_go()
        t0, cpu0 = time.monotonic(), time.process_time()
        sent = index = 0
        last = len(chunks)
        while scan.acks < count:
            while index < last and sent + chunks[index][1] - scan.acks <= window:
                sock.sendall(chunks[index][0])
                sent += chunks[index][1]
                index += 1
            size = sock.recv_into(buf)
            if not size:
                raise ConnectionError(f"server closed the connection after {scan.acks} acks")
            pings = scan.feed(buf, size)
            if pings:
                sock.sendall(PONG * pings)
            if len(first) < 512:
                first += bytes(buf[:min(size, 512)])
        t1, cpu1 = time.monotonic(), time.process_time()
    problem = _check_first_ack(args.proto, publisher, first)
    if scan.bad:
        problem = f"{scan.bad} bad acks, e.g. {scan.sample_bad[:200]!r}"
    return {"t0": t0, "t1": t1, "cpu": cpu1 - cpu0, "count": scan.acks, "bad": scan.bad,
            "problem": problem, "frame": publisher.frame_size}


def send_only(args) -> dict:
    """The sending half: every frame into a socket whose other end discards, then PING."""
    publisher = fake_publisher(args.proto, args.channel)
    sock = _raw_handshake(args.host, args.port, FAKE_ACK_INBOX, ACK_SID)
    with sock:
        chunks = publisher.chunks(args.count, min(stan_wire.CHUNK_MSGS, args.window))
        child.ready()
        child.wait_go()
        t0, cpu0 = time.monotonic(), time.process_time()
        for data, _ in chunks:
            sock.sendall(data)
        sock.sendall(PING)
        _wait_pong(sock)
        t1, cpu1 = time.monotonic(), time.process_time()
    return {"t0": t0, "t1": t1, "cpu": cpu1 - cpu0, "count": args.count, "bad": 0,
            "problem": "", "frame": publisher.frame_size}


def count_only(args) -> dict:
    """The ack-counting half: the fake sends N recorded acks after our second PING."""
    publisher = fake_publisher(args.proto, args.channel)
    sock = _raw_handshake(args.host, args.port, FAKE_ACK_INBOX, ACK_SID)
    with sock:
        scan = _scanner(args.proto, publisher)
        buf = bytearray(1 << 20)
        child.ready()
        child.wait_go()
        t0, cpu0 = time.monotonic(), time.process_time()
        sock.sendall(PING)  # the trigger; its PONG comes first and is not counted
        while scan.acks < args.count:
            size = sock.recv_into(buf)
            if not size:
                break
            pings = scan.feed(buf, size)
            if pings:
                sock.sendall(PONG * pings)
        t1, cpu1 = time.monotonic(), time.process_time()
    return {"t0": t0, "t1": t1, "cpu": cpu1 - cpu0, "count": scan.acks, "bad": scan.bad,
            "problem": f"{scan.bad} bad acks" if scan.bad else "", "frame": 0}


def _consumer_setup(args):
    if args.fake:
        inbox = FAKE_DELIVER
        sock = _raw_handshake(args.host, args.port, inbox, DELIVER_SID)
        if args.proto == "stan":
            return sock, stan_wire.StanConsumerScan(args.count, FAKE_STAN_ACK_INBOX,
                                                    args.channel)
        return sock, stan_wire.JsConsumerScan(args.count)
    link = stan_wire.Link(args.host, args.port, TIMEOUT_S, name="bench-sub")
    inbox = f"_INBOX.{stan_wire.nuid()}"
    link.sub(inbox, DELIVER_SID)
    link.flush()
    if args.proto == "stan":
        client_id = f"bench-sub-{stan_wire.nuid(8)}"
        response, _ = stan_wire.stan_connect(link, client_id)
        ack_inbox = stan_wire.stan_subscribe(link, response, client_id, args.channel, inbox)
        scan = stan_wire.StanConsumerScan(args.count, ack_inbox, args.channel)
    else:
        stan_wire.js_create_consumer(link, args.channel.upper(), FAKE_DURABLE, inbox)
        scan = stan_wire.JsConsumerScan(args.count)
    link.flush()
    if any(msg.sid == DELIVER_SID for msg in link.msgs):
        raise RuntimeError("deliveries before the run: the channel / stream is not empty")
    return _clean(link), scan


def consume(args) -> dict:
    sock, scan = _consumer_setup(args)
    with sock:
        count = args.count
        t_ready, cpu0 = time.monotonic(), time.process_time()
        child.ready(t_ready)
        if args.fake:
            child.wait_go()
            t_ready, cpu0 = time.monotonic(), time.process_time()
            sock.sendall(PING)  # the trigger for the fake source
        t_first = None
        recv, sendall, feed = sock.recv, sock.sendall, scan.feed
        try:
            while scan.unique < count:
                data = recv(1 << 20)
                if not data:
                    break
                if t_first is None:
                    t_first = time.monotonic()
                out = feed(data)
                if out:
                    sendall(b"".join(out))
        except (TimeoutError, socket.timeout):
            pass
        t_last, cpu1 = time.monotonic(), time.process_time()
    problem = "" if scan.unique == count else f"got {scan.unique} of {count} messages"
    return {"t_ready": t_ready, "t_first": t_first or t_last, "t_last": t_last,
            "cpu": cpu1 - cpu0, "count": scan.unique, "redelivered": scan.redelivered,
            "other": scan.other, "problem": problem}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stan_gen")
    parser.add_argument("role", choices=("pub", "sub", "send", "count"))
    parser.add_argument("proto", choices=("stan", "js"))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--channel", default="bench")
    parser.add_argument("--fake", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    role = {"pub": publish, "sub": consume, "send": send_only, "count": count_only}[args.role]
    child.report(role(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
