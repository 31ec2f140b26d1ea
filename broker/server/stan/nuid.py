"""Unique tokens for inboxes: 22 base-62 characters, as nats.go's NUID produces."""
from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def next_nuid(length: int = 22) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_inbox() -> str:
    return "_INBOX." + next_nuid()
