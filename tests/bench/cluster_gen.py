"""Load generator roles of the cluster bench that the streaming generator has not.

    python -m tests.bench.cluster_gen ROLE PROTO HOST PORT [options]

ROLE  steady   failover publisher: keeps at most --window publishes unacknowledged;
               one without an ack after --timeout seconds is given up and a new one
               (new id) takes its slot; an error ack frees the slot after a 20 ms
               pause. Runs from "go" until "stop" on stdin; prints a progress line
               "p ACKS LAST_ACK_T" every 50 ms; reports every successful ack's time and
               message id.
      paced    latency publisher: N messages at --rate msgs/s (message i due at
               t0 + i/rate; when late, sent at once), not waiting for acks; reports
               publish→ack latencies.
      latsub   latency consumer: subscribed before the publisher starts, acks every
               delivery, reports publish→deliver latencies for N distinct messages.
PROTO stan | js   (as in stan_gen: STAN on Runnel, JetStream on nats-server)

A payload is 128 bytes: b"%020d %010d " % (CLOCK_MONOTONIC ns at the write, message
id), padded with "x". The clock is one for the whole machine, so the consumer's
receive time minus the embedded time is the publish→deliver latency. The identity
and handshakes are stan_gen's (``stan_wire``); unlike stan_gen, these roles parse
every frame with ``broker.protocol.nats.Parser`` and protobuf: their rates are low
(a few thousand msgs/s), the Python cost per message (~20 µs) is far below the
latencies measured.

An ack is matched to its message: STAN by the PubAck guid (prefix + 10-digit id),
JetStream by the reply subject (``<inbox>.<id>``), so a late ack of a message given
up counts as a success of that message, and never of another.
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import sys
import time

from broker.protocol.nats.events import Err, Msg, Ping
from broker.protocol.stan import Ack, MsgProto, PubAck, PubMsg

from . import child, stan_wire
from .stan_wire import ACK_SID, DELIVER_SID, PONG

TIMEOUT_S = 60.0
PAYLOAD_SIZE = 128
ERROR_PAUSE_S = 0.02
PROGRESS_S = 0.05


def payload(msg_id: int, t_ns: int) -> bytes:
    head = b"%020d %010d " % (t_ns, msg_id)
    return head + b"x" * (PAYLOAD_SIZE - len(head))


def parse_payload(data: bytes) -> tuple[int, int] | None:
    """(send time ns, message id), or None for a payload not made by ``payload``."""
    try:
        return int(data[:20]), int(data[21:31])
    except ValueError:
        return None


class Publisher:
    """One publishing connection: frames with an id, acks matched back to ids."""

    def __init__(self, proto: str, host: str, port: int, channel: str, name: str):
        self.proto = proto
        self.channel = channel
        self.link = stan_wire.Link(host, port, TIMEOUT_S, name=name)
        if proto == "stan":
            self.client_id = f"{name}-{stan_wire.nuid(8)}"
            response, self.conn_id = stan_wire.stan_connect(self.link, self.client_id)
            self.pub_subject = f"{response.pubPrefix}.{channel}".encode()
            self.ack_inbox = f"_STAN.acks.{stan_wire.nuid()}"
            self.guid_prefix = stan_wire.nuid(12)
            self.link.sub(self.ack_inbox, ACK_SID)
        else:
            self.ack_inbox = f"_INBOX.{stan_wire.nuid()}"
            self.link.sub(f"{self.ack_inbox}.*", ACK_SID)
        self.link.flush()
        if self.link.msgs:
            raise RuntimeError("messages on the ack inbox before the run")
        self.sock = self.link.sock
        self.sock.settimeout(TIMEOUT_S)
        self._inbox = self.ack_inbox.encode()

    def frame(self, msg_id: int, t_ns: int) -> bytes:
        data = payload(msg_id, t_ns)
        if self.proto == "stan":
            body = PubMsg(clientID=self.client_id, guid=f"{self.guid_prefix}{msg_id:010d}",
                          subject=self.channel, data=data,
                          connID=self.conn_id).SerializeToString()
            return b"PUB %s %s %d\r\n%s\r\n" % (self.pub_subject, self._inbox, len(body), body)
        return b"PUB %s %s.%d %d\r\n%s\r\n" % (self.channel.encode(), self._inbox, msg_id,
                                                len(data), data)

    def read(self, timeout: float) -> list[tuple[int, bool, str]] | None:
        """Acks that arrive within ``timeout``: [(id, ok, error)]; None when the server
        closed the connection."""
        if timeout > 0 and not select.select([self.sock], [], [], timeout)[0]:
            return []
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        if not data:
            return None
        out = []
        for event in self.link.parser.feed(data):
            if isinstance(event, Ping):
                self.sock.sendall(PONG)
            elif isinstance(event, Err):
                raise RuntimeError(f"server error: {event!r}")
            elif isinstance(event, Msg):
                if event.sid != ACK_SID:
                    if event.reply:  # a STAN heartbeat on the link's inbox: answer it
                        self.sock.sendall(b"PUB %s 0\r\n\r\n" % event.reply)
                    continue
                out.append(self._ack(event))
        return out

    def _ack(self, msg: Msg) -> tuple[int, bool, str]:
        if self.proto == "stan":
            ack = PubAck.FromString(msg.payload)
            if not ack.guid.startswith(self.guid_prefix):
                return -1, False, f"unknown guid {ack.guid!r}"
            return int(ack.guid[-10:]), not ack.error, ack.error
        msg_id = int(msg.subject.rsplit(b".", 1)[1])
        if msg.headers is not None:  # a status: 503 no responders, 408...
            return msg_id, False, msg.headers.split(b"\r\n", 1)[0].decode(errors="replace")
        if b'"error"' in msg.payload:
            return msg_id, False, msg.payload[:200].decode(errors="replace")
        return msg_id, True, ""


class Stdin:
    """Lines from the parent, read without blocking."""

    def __init__(self):
        self.fd = sys.stdin.fileno()
        self.buf = b""

    def poll(self) -> list[str]:
        lines = []
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 4096)
            if not data:
                return lines + ["stop"]
            self.buf += data
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                lines.append(line.decode().strip())
        return lines


def steady(args) -> dict:
    pub = Publisher(args.proto, args.host, args.port, args.channel, "bench-steady")
    window, timeout = args.window, args.timeout
    stdin = Stdin()
    child.ready()
    child.wait_go()
    t_start = time.monotonic()
    outstanding: dict[int, float] = {}  # id -> sent at
    sent: dict[int, float] = {}  # id -> sent at, until its first ok ack
    ack_times: list[float] = []
    acked: list[int] = []
    acked_sent: list[float] = []  # when each acked message was sent
    errors: dict[str, int] = {}
    error_times: list[float] = []
    timeouts = late = dup_acks = 0
    next_id = 0
    pause_until = 0.0
    next_progress = t_start
    problem = ""
    while True:
        now = time.monotonic()
        if now >= next_progress:
            print(f"p {len(acked)} {ack_times[-1] if ack_times else 0.0!r} "
                  f"{acked_sent[-1] if acked_sent else 0.0!r}", flush=True)
            next_progress = now + PROGRESS_S
            if "stop" in stdin.poll():
                break
        for msg_id, sent_at in list(outstanding.items()):
            if now - sent_at > timeout:
                del outstanding[msg_id]
                timeouts += 1
        if now >= pause_until and len(outstanding) < window:
            frames = []
            while len(outstanding) < window:
                t_ns = time.monotonic_ns()
                frames.append(pub.frame(next_id, t_ns))
                outstanding[next_id] = sent[next_id] = t_ns / 1e9
                next_id += 1
            pub.sock.sendall(b"".join(frames))
        wait = min([next_progress - now]
                   + [sent_at + timeout - now for sent_at in outstanding.values()]
                   + ([pause_until - now] if pause_until > now else []))
        acks = pub.read(max(0.0005, wait))
        if acks is None:
            problem = f"the server closed the connection after {len(acked)} acks"
            break
        got_at = time.monotonic()
        for msg_id, ok, error in acks:
            if msg_id not in sent:
                dup_acks += 1
                continue
            was_outstanding = outstanding.pop(msg_id, None) is not None
            if ok:
                acked_sent.append(sent.pop(msg_id))  # a second ack of it is a duplicate
                ack_times.append(got_at)
                acked.append(msg_id)
                late += not was_outstanding
            else:
                sent.pop(msg_id, None)
                key = error[:80]
                errors[key] = errors.get(key, 0) + 1
                error_times.append(round(got_at, 6))
                pause_until = got_at + ERROR_PAUSE_S
    t_end = time.monotonic()
    pub.sock.close()
    return {"t_start": t_start, "t_end": t_end, "ack_times": [round(t, 6) for t in ack_times],
            "acked": acked, "acked_sent": [round(t, 6) for t in acked_sent], "sent": next_id,
            "timeouts": timeouts, "late": late, "errors": errors, "error_times": error_times,
            "dup_acks": dup_acks, "problem": problem}


def paced(args) -> dict:
    pub = Publisher(args.proto, args.host, args.port, args.channel, "bench-paced")
    count, interval = args.count, 1.0 / args.rate
    sent_at = [0] * count
    ack_ns: list[int] = []
    errors = 0
    child.ready()
    child.wait_go()
    t0 = time.monotonic()
    index = 0
    problem = ""
    deadline = None
    while len(ack_ns) + errors < count:
        now = time.monotonic()
        while index < count and now >= t0 + index * interval:
            t_ns = time.monotonic_ns()
            pub.sock.sendall(pub.frame(index, t_ns))
            sent_at[index] = t_ns
            index += 1
            now = time.monotonic()
        if index == count and deadline is None:
            deadline = now + 30.0
        if deadline is not None and now > deadline:
            problem = f"{count - len(ack_ns) - errors} publishes not acked within 30 s"
            break
        wait = (t0 + index * interval - now) if index < count else 0.05
        acks = pub.read(max(0.0, wait))
        if acks is None:
            problem = "the server closed the connection"
            break
        got = time.monotonic_ns()
        for msg_id, ok, _ in acks:
            if ok and 0 <= msg_id < count:
                ack_ns.append(got - sent_at[msg_id])
            else:
                errors += 1
    t1 = time.monotonic()
    pub.sock.close()
    if errors and not problem:
        problem = f"{errors} error acks"
    return {"t0": t0, "t1": t1, "count": count, "sent": index,
            "ack_us": [n // 1000 for n in ack_ns], "problem": problem}


def latsub(args) -> dict:
    link = stan_wire.Link(args.host, args.port, TIMEOUT_S, name="bench-latsub")
    inbox = f"_INBOX.{stan_wire.nuid()}"
    link.sub(inbox, DELIVER_SID)
    link.flush()
    if args.proto == "stan":
        client_id = f"bench-latsub-{stan_wire.nuid(8)}"
        response, _ = stan_wire.stan_connect(link, client_id)
        ack_inbox = stan_wire.stan_subscribe(link, response, client_id, args.channel, inbox)
        ack_head = b"PUB %s " % ack_inbox.encode()
    else:
        stan_wire.js_create_consumer(link, args.channel.upper(), "LAT", inbox)
    link.flush()
    if any(msg.sid == DELIVER_SID for msg in link.msgs):
        raise RuntimeError("deliveries before the run: the channel / stream is not empty")
    sock = link.sock
    count = args.count
    seen = bytearray(count)
    latencies: list[int] = []
    redelivered = other = 0
    stdin = Stdin()
    child.ready()
    idle_deadline = time.monotonic() + TIMEOUT_S
    problem = ""
    while len(latencies) < count:
        if "stop" in stdin.poll():
            break
        if not select.select([sock], [], [], 0.05)[0]:
            if time.monotonic() > idle_deadline:
                break
            continue
        data = sock.recv(1 << 20)
        got = time.monotonic_ns()
        if not data:
            problem = "the server closed the connection"
            break
        out = []
        for event in link.parser.feed(data):
            if isinstance(event, Ping):
                out.append(PONG)
            elif isinstance(event, Err):
                raise RuntimeError(f"server error: {event!r}")
            elif isinstance(event, Msg):
                if event.sid != DELIVER_SID:
                    if event.reply:
                        out.append(b"PUB %s 0\r\n\r\n" % event.reply)
                    continue
                if event.headers is not None:  # JetStream status (heartbeat, flow control)
                    if event.reply:
                        out.append(b"PUB %s 0\r\n\r\n" % event.reply)
                    continue
                if args.proto == "stan":
                    msg = MsgProto.FromString(event.payload)
                    data_bytes = msg.data
                    body = Ack(subject=args.channel, sequence=msg.sequence).SerializeToString()
                    out.append(b"%s%d\r\n%s\r\n" % (ack_head, len(body), body))
                else:
                    data_bytes = event.payload
                    out.append(b"PUB %s 0\r\n\r\n" % event.reply)
                parsed = parse_payload(data_bytes)
                if parsed is None or not 0 <= parsed[1] < count:
                    other += 1
                elif seen[parsed[1]]:
                    redelivered += 1
                else:
                    seen[parsed[1]] = 1
                    latencies.append(got - parsed[0])
        if out:
            sock.sendall(b"".join(out))
        idle_deadline = time.monotonic() + 10.0
    sock.close()
    if len(latencies) < count and not problem:
        problem = f"got {len(latencies)} of {count} messages"
    return {"count": len(latencies), "deliver_us": [n // 1000 for n in latencies],
            "redelivered": redelivered, "other": other, "problem": problem}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cluster_gen")
    parser.add_argument("role", choices=("steady", "paced", "latsub"))
    parser.add_argument("proto", choices=("stan", "js"))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=0.1)
    parser.add_argument("--channel", default="bench")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        result = {"steady": steady, "paced": paced, "latsub": latsub}[args.role](args)
    except (OSError, socket.timeout) as exc:
        result = {"problem": f"{type(exc).__name__}: {exc}"}
    child.report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
