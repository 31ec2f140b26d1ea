"""The transport: pysyncobj's TCPTransport plus the two hooks durability and
replication need.

* Held acknowledgements: a follower's ``next_node_idx`` reply (the append-
  entries answer) is held while the journal has unsynced data, and released by
  ``release()`` right after the group commit's fsync. A follower thus never says
  "stored" before the entries are on disk, and one fsync answers every
  append-entries message that arrived in the same poll.
* Monotonic nextIndex: on a success reply, pysyncobj sets the leader's
  nextIndex for that follower to the reply's index, even when it had already
  sent further (pipelining). It then re-sends entries the follower has, and
  the follower truncates and re-appends them (pysyncobj's CRITICAL "truncating
  already-applied log entries"). We keep nextIndex from going back on a
  success reply; failure replies (``reset``) still move it as before.

``LeanTransport`` (lean.py) subclasses this with a connection that does not
pickle or zlib-compress.
"""

from __future__ import annotations

from pysyncobj.transport import TCPTransport, Transport


class DurableTransport(TCPTransport):
    #: False only to demonstrate pysyncobj's behaviour in a test.
    fix_next_index = True

    def __init__(self, syncObj, selfNode, otherNodes):
        self._held: list = []
        super().__init__(syncObj, selfNode, otherNodes)

    def send(self, node, message):
        if message.__class__ is dict and message.get("type") == "next_node_idx":
            if self._held or self._syncObj.journal.dirty:
                self._held.append((node, message))
                return True
        return super().send(node, message)

    def release(self) -> None:
        """Send the held acknowledgements (the journal was just synced)."""
        if not self._held:
            return
        held, self._held = self._held, []
        for node, message in held:
            super().send(node, message)

    def _onMessageReceived(self, node, message):
        if (self.fix_next_index and message.__class__ is dict
                and message.get("type") == "next_node_idx"
                and message.get("success") and not message.get("reset")):
            core = self._syncObj
            before = core.next_index(node)
            super()._onMessageReceived(node, message)
            core.keep_next_index(node, before)
            return
        super()._onMessageReceived(node, message)


class LocalTransport(Transport):
    """A group of one talks to nobody: no port is bound, nothing is sent."""

    fix_next_index = True

    def send(self, node, message):
        return False

    def release(self) -> None:
        pass
