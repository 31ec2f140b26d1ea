"""The subject router: which subscriptions match a published subject.

Literal subscriptions sit in a dict keyed by subject; wildcard subscriptions in a
token trie (``*`` and ``>`` children per level), as in nats-server's sublist.
Results are cached per subject; any change of the subscription set clears the
cache, which is cheap next to the publishes it serves.

A match result is ``(plain, groups)``: a tuple of plain subscriptions, and a tuple
of queue groups, each a tuple of member subscriptions (one group per queue name,
whatever pattern its members used).
"""
from __future__ import annotations

from typing import Any

EMPTY_MATCH: tuple[tuple, tuple] = ((), ())
_CACHE_MAX = 4096


class Subscription:
    """A subscription of a connection (or of an internal client) to a subject."""

    __slots__ = ("conn", "subject", "queue", "sid", "max_msgs", "delivered")

    def __init__(self, conn: Any, subject: bytes, queue: bytes | None, sid: bytes):
        self.conn = conn
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.max_msgs = 0  # 0: no auto-unsubscribe limit
        self.delivered = 0

    def __repr__(self) -> str:
        return f"Subscription({self.subject!r}, queue={self.queue!r}, sid={self.sid!r})"


class _Node:
    __slots__ = ("literals", "star", "tail", "subs")

    def __init__(self) -> None:
        self.literals: dict[bytes, _Node] = {}
        self.star: _Node | None = None
        self.tail: list[Subscription] = []  # subscriptions ending in '>' at this level
        self.subs: list[Subscription] = []  # subscriptions ending exactly here

    def is_empty(self) -> bool:
        return not (self.literals or self.star or self.tail or self.subs)


class Router:
    """Subscriptions by subject. Owned by the event loop thread."""

    def __init__(self) -> None:
        self._literal: dict[bytes, list[Subscription]] = {}
        self._root = _Node()
        self._cache: dict[bytes, tuple[tuple, tuple]] = {}
        self.count = 0
        self.inserts = 0
        self.removes = 0
        self.matches = 0
        self.cache_hits = 0

    def insert(self, sub: Subscription) -> None:
        subject = sub.subject
        if _has_wildcard_token(subject):
            self._trie_insert(sub)
        else:
            self._literal.setdefault(subject, []).append(sub)
        self.count += 1
        self.inserts += 1
        self._cache.clear()

    def remove(self, sub: Subscription) -> None:
        subject = sub.subject
        members = self._literal.get(subject)
        if members is not None and sub in members:
            members.remove(sub)
            if not members:
                del self._literal[subject]
        elif not self._trie_remove(sub):
            return
        self.count -= 1
        self.removes += 1
        self._cache.clear()

    def match(self, subject: bytes) -> tuple[tuple, tuple]:
        """The subscriptions a message published on ``subject`` goes to."""
        self.matches += 1
        cached = self._cache.get(subject)
        if cached is not None:
            self.cache_hits += 1
            return cached
        found = list(self._literal.get(subject, ()))
        if self._root.literals or self._root.star or self._root.tail:
            _trie_match(self._root, subject.split(b"."), 0, found)
        result = _split_groups(found) if found else EMPTY_MATCH
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[subject] = result
        return result

    def cache_entries(self) -> list[tuple[bytes, tuple[tuple, tuple]]]:
        """The cached match results, for monitoring (fan-out statistics)."""
        return list(self._cache.items())

    def all_subscriptions(self) -> list[Subscription]:
        subs = [sub for members in self._literal.values() for sub in members]
        _trie_collect(self._root, subs)
        return subs

    def _trie_insert(self, sub: Subscription) -> None:
        node = self._root
        tokens = sub.subject.split(b".")
        for token in tokens[:-1]:
            node = _child(node, token)
        last = tokens[-1]
        if last == b">":
            node.tail.append(sub)
        else:
            _child(node, last).subs.append(sub)

    def _trie_remove(self, sub: Subscription) -> bool:
        path = [self._root]
        tokens = sub.subject.split(b".")
        node = self._root
        for token in tokens[:-1] if tokens[-1] == b">" else tokens:
            node = node.star if token == b"*" else node.literals.get(token)
            if node is None:
                return False
            path.append(node)
        members = node.tail if tokens[-1] == b">" else node.subs
        if sub not in members:
            return False
        members.remove(sub)
        _prune(path, tokens)
        return True


def _has_wildcard_token(subject: bytes) -> bool:
    return any(token in (b"*", b">") for token in subject.split(b"."))


def _child(node: _Node, token: bytes) -> _Node:
    if token == b"*":
        if node.star is None:
            node.star = _Node()
        return node.star
    child = node.literals.get(token)
    if child is None:
        child = node.literals[token] = _Node()
    return child


def _prune(path: list[_Node], tokens: list[bytes]) -> None:
    """Drop trie nodes left empty by a removal, deepest first."""
    for depth in range(len(path) - 1, 0, -1):
        node = path[depth]
        if not node.is_empty():
            return
        parent = path[depth - 1]
        token = tokens[depth - 1]
        if token == b"*":
            parent.star = None
        else:
            parent.literals.pop(token, None)


def _trie_match(node: _Node, tokens: list[bytes], index: int, found: list) -> None:
    if node.tail and index < len(tokens):
        found.extend(node.tail)
    if index == len(tokens):
        found.extend(node.subs)
        return
    child = node.literals.get(tokens[index])
    if child is not None:
        _trie_match(child, tokens, index + 1, found)
    if node.star is not None:
        _trie_match(node.star, tokens, index + 1, found)


def _trie_collect(node: _Node, out: list) -> None:
    out.extend(node.subs)
    out.extend(node.tail)
    for child in node.literals.values():
        _trie_collect(child, out)
    if node.star is not None:
        _trie_collect(node.star, out)


def _split_groups(found: list[Subscription]) -> tuple[tuple, tuple]:
    plain = []
    groups: dict[bytes, list[Subscription]] = {}
    for sub in found:
        if sub.queue is None:
            plain.append(sub)
        else:
            groups.setdefault(sub.queue, []).append(sub)
    return tuple(plain), tuple(tuple(members) for members in groups.values())
