"""STAN name rules (reference §2.17) and subject map (reference §2.2), as pure functions.

Names are ``str`` here, as protobuf hands them over. The checks mirror
nats-streaming-server byte for byte: ``clientIDRegEx`` for client IDs and
``util.IsChannelNameValid`` for channel names.
"""
from __future__ import annotations

import re

# --- Subject map (§2.2) ------------------------------------------------------------------
DEFAULT_DISCOVER_PREFIX = "_STAN.discover"
PUB_PREFIX = "_STAN.pub"
SUB_PREFIX = "_STAN.sub"
UNSUB_PREFIX = "_STAN.unsub"
SUBCLOSE_PREFIX = "_STAN.subclose"
CLOSE_PREFIX = "_STAN.close"
PINGS_SUFFIX = "pings"


def discover_subject(cluster_id: str, prefix: str = DEFAULT_DISCOVER_PREFIX) -> str:
    """Where ConnectRequests arrive: ``_STAN.discover.<cluster_id>``."""
    return f"{prefix}.{cluster_id}"


def pings_subject(cluster_id: str, prefix: str = DEFAULT_DISCOVER_PREFIX) -> str:
    """ConnectResponse.pingRequests: ``_STAN.discover.<cluster_id>.pings``."""
    return f"{prefix}.{cluster_id}.{PINGS_SUFFIX}"


def pub_prefix(cluster_id: str) -> str:
    """ConnectResponse.pubPrefix: ``_STAN.pub.<cluster_id>``."""
    return f"{PUB_PREFIX}.{cluster_id}"


def pub_subject(prefix: str, channel: str) -> str:
    """The NATS subject a client publishes a channel's PubMsg to: ``<pubPrefix>.<channel>``."""
    return f"{prefix}.{channel}"


def pub_wildcard(prefix: str) -> str:
    """What the server subscribes to for publishes: ``<pubPrefix>.>``. The subject's
    suffix is ignored; ``PubMsg.subject`` names the channel."""
    return f"{prefix}.>"


def sub_subject(cluster_id: str) -> str:
    """ConnectResponse.subRequests: ``_STAN.sub.<cluster_id>``."""
    return f"{SUB_PREFIX}.{cluster_id}"


def unsub_subject(cluster_id: str) -> str:
    """ConnectResponse.unsubRequests: ``_STAN.unsub.<cluster_id>``."""
    return f"{UNSUB_PREFIX}.{cluster_id}"


def subclose_subject(cluster_id: str) -> str:
    """ConnectResponse.subCloseRequests: ``_STAN.subclose.<cluster_id>``."""
    return f"{SUBCLOSE_PREFIX}.{cluster_id}"


def close_subject(cluster_id: str) -> str:
    """ConnectResponse.closeRequests: ``_STAN.close.<cluster_id>``."""
    return f"{CLOSE_PREFIX}.{cluster_id}"


# --- Name rules (§2.17) -------------------------------------------------------------------
# Go's `$` without (?m) is end of text; Python's `$` also matches before a final "\n",
# so the check uses fullmatch and no anchors.
_CLIENT_ID = re.compile(r"[a-zA-Z0-9_-]+")


def is_valid_client_id(client_id: str) -> bool:
    """``^[a-zA-Z0-9_-]+$``: not empty; no ``.``, ``:``, spaces or non-ASCII."""
    return _CLIENT_ID.fullmatch(client_id) is not None


def is_valid_channel(channel: str) -> bool:
    """``IsChannelNameValid(channel, false)``: not empty, no ``/``, no leading, trailing
    or doubled ``.``, and no ``*`` or ``>`` anywhere (even inside a token).

    Like the Go server, this does not reject spaces or other characters that core NATS
    forbids in subjects.
    """
    if not channel or "/" in channel or "*" in channel or ">" in channel:
        return False
    return channel[0] != "." and channel[-1] != "." and ".." not in channel


def is_valid_channel_pattern(pattern: str) -> bool:
    """``IsChannelNameValid(pattern, true)``, for per-channel limit keys in the config:
    the channel rules, but ``*`` and ``>`` are allowed as whole tokens, ``>`` last."""
    if not pattern or "/" in pattern:
        return False
    tokens = pattern.split(".")
    for index, token in enumerate(tokens):
        if not token:
            return False
        if ("*" in token or ">" in token) and token not in ("*", ">"):
            return False
        if token == ">" and index != len(tokens) - 1:
            return False
    return True


def is_valid_durable_queue_name(durable_name: str) -> bool:
    """A durable queue group's durable name must not contain ``:`` (it is the separator
    of the group name, see `durable_queue_name`). Plain durable names and queue group
    names have no rule of their own."""
    return ":" not in durable_name


def durable_queue_name(durable_name: str, queue_group: str) -> str:
    """The name of a durable queue group, ``<durableName>:<qGroup>``. Independent of the
    client ID; monitoring shows it as ``queue_name``."""
    return f"{durable_name}:{queue_group}"


def channel_case_key(channel: str) -> str:
    """Go's ``strings.ToLower``: two channels whose keys are equal but whose names are not
    conflict (``errors.channel_case_conflict``). Lookup stays case-sensitive.

    Go maps each rune with the simple lower-case mapping; Python's ``str.lower`` uses the
    full mapping (``"İ"`` becomes two characters, a final ``Σ`` becomes ``ς``), so
    non-ASCII names are mapped one character at a time.
    """
    if channel.isascii():
        return channel.lower()
    return "".join(char.lower()[0] for char in channel)
