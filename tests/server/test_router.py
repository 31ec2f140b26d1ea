"""The subject router (reference §1.6, §1.7): which subscriptions a publish reaches.

`Router.match` returns ``(plain, groups)``: plain subscriptions, and one tuple of
members per queue name, whatever pattern each member subscribed with.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.protocol.nats.subjects import matches
from broker.server.router import EMPTY_MATCH, Router, Subscription

CONN = object()


def sub(subject: bytes, queue: bytes | None = None, sid: bytes = b"1") -> Subscription:
    return Subscription(CONN, subject, queue, sid)


def plain_of(router: Router, subject: bytes) -> set:
    return set(router.match(subject)[0])


def groups_of(router: Router, subject: bytes) -> dict[bytes, set]:
    groups = {}
    for members in router.match(subject)[1]:
        queues = {member.queue for member in members}
        assert len(queues) == 1, "a group holds one queue name only"
        queue = queues.pop()
        assert queue not in groups, "one group per queue name"
        groups[queue] = set(members)
    return groups


def test_empty_router_matches_nothing():
    router = Router()
    assert router.match(b"foo") == EMPTY_MATCH
    assert router.count == 0


def test_literal():
    router = Router()
    a, b = sub(b"foo.bar"), sub(b"foo.bar", sid=b"2")
    other = sub(b"foo.baz")
    for s in (a, b, other):
        router.insert(s)
    assert plain_of(router, b"foo.bar") == {a, b}
    assert plain_of(router, b"foo.baz") == {other}
    assert plain_of(router, b"foo") == set()
    assert plain_of(router, b"foo.bar.baz") == set()
    assert plain_of(router, b"Foo.bar") == set()  # case-sensitive


def test_star_matches_exactly_one_token():
    router = Router()
    mid, first, alone = sub(b"foo.*.baz"), sub(b"*.bar"), sub(b"*")
    for s in (mid, first, alone):
        router.insert(s)
    assert plain_of(router, b"foo.bar.baz") == {mid}
    assert plain_of(router, b"foo.bar") == {first}
    assert plain_of(router, b"x") == {alone}
    assert plain_of(router, b"foo.baz") == set()
    assert plain_of(router, b"foo.a.b.baz") == set()


def test_tail_matches_one_or_more_tokens_not_zero():
    router = Router()
    tail, root_tail, star_tail = sub(b"foo.>"), sub(b">"), sub(b"*.>")
    for s in (tail, root_tail, star_tail):
        router.insert(s)
    assert plain_of(router, b"foo") == {root_tail}
    assert plain_of(router, b"foo.bar") == {tail, root_tail, star_tail}
    assert plain_of(router, b"foo.bar.baz.qux") == {tail, root_tail, star_tail}
    assert plain_of(router, b"bar") == {root_tail}
    assert plain_of(router, b"bar.x") == {root_tail, star_tail}


def test_wildcards_only_as_whole_tokens():
    router = Router()
    star_lit, tail_lit, star = sub(b"foo*.bar"), sub(b"foo>"), sub(b"*.bar")
    for s in (star_lit, tail_lit, star):
        router.insert(s)
    assert plain_of(router, b"foo*.bar") == {star_lit, star}
    assert plain_of(router, b"fooX.bar") == {star}
    assert plain_of(router, b"foo>") == {tail_lit}
    assert plain_of(router, b"foo.x") == set()


def test_one_connection_with_two_matching_sids_gets_both():
    router = Router()
    one, two = sub(b"foo.*", sid=b"1"), sub(b">", sid=b"2")
    router.insert(one)
    router.insert(two)
    assert plain_of(router, b"foo.bar") == {one, two}


def test_queue_groups_are_grouped_by_name_across_patterns():
    router = Router()
    q_star = sub(b"foo.*", b"q", b"1")
    q_lit = sub(b"foo.bar", b"q", b"2")
    q_tail = sub(b">", b"q", b"3")
    r_lit = sub(b"foo.bar", b"r", b"4")
    plain = sub(b"foo.bar", None, b"5")
    for s in (q_star, q_lit, q_tail, r_lit, plain):
        router.insert(s)
    assert plain_of(router, b"foo.bar") == {plain}
    assert groups_of(router, b"foo.bar") == {b"q": {q_star, q_lit, q_tail}, b"r": {r_lit}}
    assert groups_of(router, b"foo.baz") == {b"q": {q_star, q_tail}}
    assert groups_of(router, b"other") == {b"q": {q_tail}}
    assert plain_of(router, b"other") == set()


def test_remove():
    router = Router()
    a, b = sub(b"foo.*"), sub(b"foo.*", sid=b"2")
    router.insert(a)
    router.insert(b)
    router.remove(a)
    assert plain_of(router, b"foo.x") == {b}
    assert router.count == 1
    router.remove(a)  # twice: no effect
    assert router.count == 1
    router.remove(sub(b"never.inserted"))
    router.remove(sub(b"never.*"))
    assert router.count == 1
    assert router.all_subscriptions() == [b]


def test_removal_prunes_the_trie_and_the_literal_table():
    router = Router()
    subs = [sub(subject, sid=b"%d" % i) for i, subject in enumerate(
        [b"a.b.c", b"a.*.c", b"a.>", b"a.b.>", b"*.*.*", b">", b"a.*", b"x.y.z.*"])]
    for s in subs:
        router.insert(s)
    assert router.count == len(subs)
    for s in reversed(subs):
        router.remove(s)
    assert router.count == 0
    assert router.all_subscriptions() == []
    assert router._literal == {}
    assert router._root.is_empty()
    assert router.match(b"a.b.c") == EMPTY_MATCH


def test_partial_removal_keeps_shared_prefixes():
    router = Router()
    deep, shallow = sub(b"a.*.c.d"), sub(b"a.*")
    router.insert(deep)
    router.insert(shallow)
    router.remove(deep)
    assert plain_of(router, b"a.b") == {shallow}
    assert plain_of(router, b"a.b.c.d") == set()
    router.remove(shallow)
    assert router._root.is_empty()


def test_cache_is_invalidated_on_insert_and_remove():
    router = Router()
    assert router.match(b"foo.bar") == EMPTY_MATCH
    assert router.match(b"foo.bar") == EMPTY_MATCH
    assert router.cache_hits == 1
    wildcard = sub(b"foo.*")
    router.insert(wildcard)
    assert plain_of(router, b"foo.bar") == {wildcard}
    literal = sub(b"foo.bar", sid=b"2")
    router.insert(literal)
    assert plain_of(router, b"foo.bar") == {wildcard, literal}
    hits = router.cache_hits
    assert plain_of(router, b"foo.bar") == {wildcard, literal}
    assert router.cache_hits == hits + 1
    router.remove(wildcard)
    assert plain_of(router, b"foo.bar") == {literal}
    router.remove(literal)
    assert router.match(b"foo.bar") == EMPTY_MATCH


def test_cache_stays_bounded():
    router = Router()
    router.insert(sub(b">"))
    for i in range(10000):
        assert len(router.match(b"s.%d" % i)[0]) == 1
    assert len(router._cache) <= 4096


# -- against subjects.matches over random subscription sets --

TOKENS = [b"a", b"b", b"c", b"a*"]
PATTERNS = st.builds(
    lambda tokens, tail: b".".join(tokens + ([b">"] if tail else [])),
    st.lists(st.sampled_from(TOKENS + [b"*"]), max_size=4), st.booleans()).filter(bool)
SUBJECTS = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5).map(b".".join)
QUEUES = st.one_of(st.none(), st.sampled_from([b"q1", b"q2"]))

OPS = st.lists(st.one_of(
    st.tuples(st.just("insert"), PATTERNS, QUEUES),
    st.tuples(st.just("remove"), st.integers(0, 50)),
    st.tuples(st.just("match"), SUBJECTS),
), max_size=60)


def _expected(live: list[Subscription], subject: bytes) -> tuple[set, dict]:
    plain, groups = set(), {}
    for s in live:
        if matches(s.subject, subject):
            if s.queue is None:
                plain.add(s)
            else:
                groups.setdefault(s.queue, set()).add(s)
    return plain, groups


@settings(max_examples=300, deadline=None)
@given(ops=OPS, probes=st.lists(SUBJECTS, min_size=1, max_size=10))
def test_router_agrees_with_subjects_matches(ops, probes):
    router = Router()
    live: list[Subscription] = []
    for number, op in enumerate(ops):
        if op[0] == "insert":
            s = sub(op[1], op[2], b"%d" % number)
            router.insert(s)
            live.append(s)
        elif op[0] == "remove" and live:
            router.remove(live.pop(op[1] % len(live)))
        elif op[0] == "match":  # fills the cache between changes
            assert (plain_of(router, op[1]), groups_of(router, op[1])) == _expected(live, op[1])
    assert router.count == len(live)
    for subject in probes:
        assert (plain_of(router, subject), groups_of(router, subject)) == _expected(live, subject)
    for s in list(live):
        router.remove(s)
    assert router.count == 0
    assert router._root.is_empty() and not router._literal
