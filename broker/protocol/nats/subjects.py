"""Subject rules of core NATS (reference §1.6): validity and wildcard matching.

Tokens are separated by ``.``; ``*`` matches one token and ``>`` one or more, and
they are wildcards only as whole tokens. Subjects are bytes, case-sensitive.
"""
from __future__ import annotations

_WHITESPACE = frozenset(b" \t\r\n\f\v")


def is_valid_subscription_subject(subject: bytes) -> bool:
    """Non-empty, no empty token, no whitespace, nothing after a ``>`` token."""
    if not subject or _has_whitespace(subject):
        return False
    tokens = subject.split(b".")
    for index, token in enumerate(tokens):
        if not token:
            return False
        if token == b">" and index != len(tokens) - 1:
            return False
    return True


def is_valid_publish_subject(subject: bytes) -> bool:
    """A valid subject whose tokens are all literal."""
    if not is_valid_subscription_subject(subject):
        return False
    return all(token not in (b"*", b">") for token in subject.split(b"."))


def is_literal(subject: bytes) -> bool:
    return all(token not in (b"*", b">") for token in subject.split(b"."))


def matches(pattern: bytes, subject: bytes) -> bool:
    """Whether a subscription pattern matches a literal subject."""
    pattern_tokens = pattern.split(b".")
    subject_tokens = subject.split(b".")
    for index, token in enumerate(pattern_tokens):
        if token == b">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != b"*" and token != subject_tokens[index]:
            return False
    return len(pattern_tokens) == len(subject_tokens)


def _has_whitespace(subject: bytes) -> bool:
    return any(byte in _WHITESPACE for byte in subject)
