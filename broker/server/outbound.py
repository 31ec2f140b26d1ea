"""The outbound side shared by client connections and route links: writes are queued,
joined and written once per loop iteration (the server schedules the flush), and a
peer whose socket holds more than ``max_pending`` bytes, or whose writes stall past
``write_deadline``, is a slow consumer. While its socket is above the high-water mark
it is ``congested`` and the publishers feeding it stall (see `ClientConnection.stall`)."""
from __future__ import annotations

from ..protocol.nats.errors import err_line
from ..protocol.nats.writer import append_msg
from .router import Subscription


class Outbound:
    """Mixin. The class provides ``server``, ``transport``, ``closed``, ``headers``
    (whether the peer takes HMSG), ``_out``, ``_out_size``, ``_flush_pending``,
    ``out_msgs``, ``out_bytes``, ``_remove_sub(sub)``, ``_slow_consumer(reason)`` and
    ``_teardown(reason)`` (forget the peer's subscriptions, cancel its timers), and for
    flow control ``congested``, ``_stalled_producers`` and ``_timers``."""

    # -- flow control (asyncio.Protocol callbacks) --

    def pause_writing(self) -> None:
        """The socket holds more than the high-water mark: publishers feeding this peer
        stall (server.publish), and a write stalled past write_deadline ends it."""
        self.congested = True
        self._timers["write"] = self.server.loop.call_later(
            self.server.limits.write_deadline_s, self._on_write_stalled)

    def resume_writing(self) -> None:
        self.congested = False
        timer = self._timers.pop("write", None)
        if timer is not None:
            timer.cancel()
        self._release_producers()

    def _release_producers(self) -> None:
        producers, self._stalled_producers = self._stalled_producers, []
        for producer in producers:
            producer.unstall()

    def _on_write_stalled(self) -> None:
        self._timers.pop("write", None)
        if not self.closed:
            self._slow_consumer("write deadline exceeded")

    # -- output --

    def send(self, data: bytes) -> None:
        """Queue protocol bytes for this peer; they are written with the next flush."""
        if self.closed:
            return
        self._out.append(data)
        self._out_size += len(data)
        if not self._flush_pending:
            self._flush_pending = True
            self.server.schedule_flush(self)

    def deliver(self, sub: Subscription, subject: bytes, reply: bytes | None,
                headers: bytes | None, payload: bytes) -> None:
        """Queue one message for one of this peer's subscriptions (its sid)."""
        if self.closed:
            return
        size = append_msg(self._out, subject, sub.sid, reply,
                          headers if self.headers else None, payload)
        self.out_msgs += 1
        self.out_bytes += size
        self._out_size += size + 48
        if not self._flush_pending:
            self._flush_pending = True
            self.server.schedule_flush(self)
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            self._remove_sub(sub)

    def flush(self) -> None:
        self._flush_pending = False
        if self.closed or not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        transport = self.transport
        transport.write(data)
        if transport.get_write_buffer_size() > self.server.limits.max_pending:
            self._slow_consumer("max pending exceeded")

    def close(self, err_text: str | None = None, reason: str = "") -> None:
        """Send ``-ERR '<err_text>'`` if given, write what is queued, and close."""
        if self.closed:
            return
        if err_text is not None:
            self._out.append(err_line(err_text))
        if self._out and self.transport is not None:
            self.transport.write(b"".join(self._out))
        self._out.clear()
        self._teardown(reason or err_text or "closed")
        if self.transport is not None:
            self.transport.close()
