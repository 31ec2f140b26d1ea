"""A lean peer connection: msgpack frames, no pickle, no zlib.

pysyncobj's TcpConnection pickles and zlib-compresses (level 3) every message
and grows its buffers by ``bytes +=`` (quadratic for big messages). With
incompressible payloads that was ~90% of a leader's CPU (ARCHITECTURE.md §6),
and unpickling what a socket delivers lets any peer run code. ``LeanConnection``
keeps the same interface (what TCPTransport calls) with:

* a streaming ``msgpack.Unpacker`` on the read side (no length prefix needed);
* a ``bytearray`` write buffer, sent as far as the socket takes it;
* the same liveness rule: no byte read for ``timeout`` seconds = dead.

Messages are pysyncobj's dicts of str/int/bytes/lists; tuples arrive as lists,
which pysyncobj only unpacks (DESIGN.md, "lean transport").
"""

from __future__ import annotations

import socket
import time

import msgpack
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import CONNECTION_STATE, _getAddrType, set_keepalive

from raft.transport import DurableTransport

_READ_CHUNK = 1 << 20
_UNPACK_MAX = 1 << 28
_RW = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR


def _unpacker() -> msgpack.Unpacker:
    return msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=_UNPACK_MAX)


class LeanConnection:
    """One TCP connection to a peer, driven by pysyncobj's poller."""

    def __init__(self, poller, socket=None, timeout=10.0, sendBufferSize=2 ** 16,
                 recvBufferSize=2 ** 16, keepalive=None):
        self.encryptor = None
        self.sendRandKey = None
        self.recvRandKey = None
        self._poller = poller
        self._timeout = timeout
        self._sndbuf = sendBufferSize
        self._rcvbuf = recvBufferSize
        self._keepalive = keepalive
        self._on_message = self._on_connected = self._on_disconnected = None
        self._wbuf = bytearray()
        self._unpacker = _unpacker()
        self._want_write = False
        self._last_read = time.monotonic()
        self._socket = socket
        self._fileno = None
        self.state = CONNECTION_STATE.DISCONNECTED
        if socket is not None:
            self._tune(socket)
            self._fileno = socket.fileno()
            self.state = CONNECTION_STATE.CONNECTED
            poller.subscribe(self._fileno, self._on_event, _RW)

    def setOnConnectedCallback(self, cb):
        self._on_connected = cb

    def setOnMessageReceivedCallback(self, cb):
        self._on_message = cb

    def setOnDisconnectedCallback(self, cb):
        self._on_disconnected = cb

    def fileno(self):
        return self._fileno

    def getSendBufferSize(self):
        return len(self._wbuf)

    def _tune(self, sock) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._keepalive is not None:
            set_keepalive(sock, *self._keepalive)
        sock.setblocking(False)

    def connect(self, host, port):
        if host is None:
            return False
        self.state = CONNECTION_STATE.DISCONNECTED
        sock = socket.socket(_getAddrType(host), socket.SOCK_STREAM)
        self._tune(sock)
        self._wbuf = bytearray()
        self._unpacker = _unpacker()
        self._last_read = time.monotonic()
        try:
            sock.connect((host, port))
        except BlockingIOError:
            pass
        except OSError:
            sock.close()
            return False
        self._socket = sock
        self._fileno = sock.fileno()
        self.state = CONNECTION_STATE.CONNECTING
        self._want_write = True
        self._poller.subscribe(self._fileno, self._on_event, _RW | POLL_EVENT_TYPE.WRITE)
        return True

    def send(self, message):
        if self.state == CONNECTION_STATE.DISCONNECTED:
            return
        if time.monotonic() - self._last_read > self._timeout:
            self.disconnect()
            return
        self._wbuf += msgpack.packb(message, use_bin_type=True)
        if self.state == CONNECTION_STATE.CONNECTED:
            self._flush_write()

    def disconnect(self):
        was_up = self.state != CONNECTION_STATE.DISCONNECTED
        self.state = CONNECTION_STATE.DISCONNECTED
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._wbuf = bytearray()
        self._unpacker = _unpacker()
        if was_up and self._on_disconnected is not None:
            self._on_disconnected()

    # -- poller callback -------------------------------------------------------
    def _on_event(self, fd, event):
        if fd != self._fileno:
            self._poller.unsubscribe(fd)
            return
        if event & POLL_EVENT_TYPE.ERROR or time.monotonic() - self._last_read > self._timeout:
            self.disconnect()
            return
        if self.state == CONNECTION_STATE.CONNECTING:
            if self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.disconnect()
                return
            self.state = CONNECTION_STATE.CONNECTED
            self._last_read = time.monotonic()
            if self._on_connected is not None:
                self._on_connected()
        if self.state == CONNECTION_STATE.CONNECTED and event & POLL_EVENT_TYPE.WRITE:
            self._flush_write()
        if self.state == CONNECTION_STATE.CONNECTED and event & POLL_EVENT_TYPE.READ:
            self._read()
        if self.state == CONNECTION_STATE.CONNECTED:
            self._update_interest()

    def _flush_write(self) -> None:
        while self._wbuf:
            try:
                sent = self._socket.send(self._wbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.disconnect()
                return
            del self._wbuf[:sent]
        self._update_interest()

    def _update_interest(self) -> None:
        want = bool(self._wbuf)
        if want != self._want_write and self._fileno is not None:
            self._want_write = want
            mask = _RW | POLL_EVENT_TYPE.WRITE if want else _RW
            self._poller.subscribe(self._fileno, self._on_event, mask)

    def _read(self) -> None:
        while True:
            try:
                data = self._socket.recv(_READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.disconnect()
                return
            if not data:
                self.disconnect()
                return
            try:
                self._unpacker.feed(data)
            except msgpack.BufferFull:
                self.disconnect()
                return
            self._last_read = time.monotonic()
            if len(data) < _READ_CHUNK:
                break
        self._dispatch()

    def _dispatch(self) -> None:
        unpacker = self._unpacker
        try:
            for message in unpacker:
                if self._on_message is not None:
                    self._on_message(message)
                if self.state != CONNECTION_STATE.CONNECTED or unpacker is not self._unpacker:
                    return
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            self.disconnect()


class LeanServer:
    """Listening socket that hands accepted sockets to LeanConnection."""

    def __init__(self, poller, host, port, onNewConnection, sendBufferSize, recvBufferSize,
                 connectionTimeout, keepalive=None):
        self._poller = poller
        self._host, self._port = host, int(port)
        self._on_new = onNewConnection
        self._sndbuf, self._rcvbuf = sendBufferSize, recvBufferSize
        self._timeout = connectionTimeout
        self._keepalive = keepalive
        self._socket = None
        self._fileno = None

    def bind(self):
        sock = socket.socket(_getAddrType(self._host), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(False)
            sock.bind((self._host, self._port))
            sock.listen(16)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._fileno = sock.fileno()
        self._poller.subscribe(self._fileno, self._on_accept, _RW)

    def unbind(self):
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _on_accept(self, fd, event):
        if event & POLL_EVENT_TYPE.ERROR:
            self.unbind()
            return
        while self._socket is not None:
            try:
                sock, _addr = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.unbind()
                return
            conn = LeanConnection(self._poller, socket=sock, timeout=self._timeout,
                                  sendBufferSize=self._sndbuf, recvBufferSize=self._rcvbuf,
                                  keepalive=self._keepalive)
            self._on_new(conn)


class LeanTransport(DurableTransport):
    """DurableTransport whose connections are LeanConnection. An incoming
    connection must first name a member of the group; anything else (pysyncobj's
    admin utility, read-only nodes, garbage) is disconnected."""

    def _onIncomingMessageReceived(self, conn, message):
        if message.__class__ is not str or message not in self._nodeAddrToNode:
            conn.disconnect()
            self._unknownConnections.discard(conn)
            return
        super()._onIncomingMessageReceived(conn, message)

    def _createServer(self):
        conf = self._syncObj.conf
        host, port = (conf.bindAddress or self._selfNode.address).rsplit(":", 1)
        if host not in ("0.0.0.0", "::"):
            host = globalDnsResolver().resolve(host)
        self._server = LeanServer(self._syncObj._poller, host, port, self._onNewIncomingConnection,
                                  conf.sendBufferSize, conf.recvBufferSize, conf.connectionTimeout,
                                  conf.tcp_keepalive)

    def addNode(self, node):
        self._nodes.add(node)
        self._nodeAddrToNode[node.address] = node
        if self._shouldConnect(node):
            conf = self._syncObj.conf
            conn = LeanConnection(self._syncObj._poller, timeout=conf.connectionTimeout,
                                  sendBufferSize=conf.sendBufferSize,
                                  recvBufferSize=conf.recvBufferSize, keepalive=conf.tcp_keepalive)
            conn.setOnConnectedCallback(lambda c=conn: self._onOutgoingConnected(c))
            conn.setOnMessageReceivedCallback(lambda m, n=node: self._onMessageReceived(n, m))
            conn.setOnDisconnectedCallback(lambda c=conn: self._onDisconnected(c))
            self._connections[node] = conn
