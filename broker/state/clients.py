"""Apply: client registration (Connect) and unregistration (CloseClient)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol.stan import errors
from . import records, subscriptions
from .effects import ClientClosed, ClientMoved, ClientOpened
from .model import Client

if TYPE_CHECKING:
    from .machine import ApplyContext, StateMachine


def apply_connect(sm: StateMachine, ctx: ApplyContext, body: dict) -> str | None:
    """Register a client. A live duplicate is refused; ``replace`` closes a dead one
    first (the proposer probed its heartbeat inbox and got no answer)."""
    client_id = body["id"]
    owner = sm.conn_ids.get(body["conn"]) if body["conn"] else None
    if owner is not None and owner != client_id:
        return errors.INVALID_CONNECTION_REQUEST  # a connID names one client only
    existing = sm.clients.get(client_id)
    if existing is not None:
        if not body.get("replace"):
            return errors.CLIENT_ID_ALREADY_REGISTERED
        close_client(sm, ctx, existing)
    client = Client(client_id, body["hb"], body["conn"], body["proto"], body["pi"], body["pm"],
                    body["node"])
    sm.add_client(client)
    ctx.txn.put_client(client_id, records.client_record(client))
    ctx.effects.append(ClientOpened(client_id, client.hb_inbox, client.conn_id, client.protocol,
                                    client.node))
    return None


def apply_close_client(sm: StateMachine, ctx: ApplyContext, body: dict) -> str | None:
    client = sm.clients.get(body["id"])
    if client is None:
        return errors.UNKNOWN_CLIENT_ID
    close_client(sm, ctx, client, body.get("now"))
    return None


def close_client(sm: StateMachine, ctx: ApplyContext, client: Client,
                 now: int | None = None) -> None:
    """Unregister the client; its subscriptions close as by a sub close (§2.13)."""
    for sub_id in sorted(client.subs):
        sub = client.subs[sub_id]
        channel = sm.channels.get(sub.channel)
        if channel is not None:
            subscriptions.close_sub(sm, ctx, channel, sub, unsubscribe=False)
            subscriptions.restart_inactivity_clock(ctx, channel, now)
    client.subs.clear()
    del sm.clients[client.client_id]
    if client.conn_id and sm.conn_ids.get(client.conn_id) == client.client_id:
        del sm.conn_ids[client.conn_id]
    ctx.txn.delete_client(client.client_id)
    ctx.effects.append(ClientClosed(client.client_id))


def apply_move_client(sm: StateMachine, ctx: ApplyContext, body: dict) -> str | None:
    """The client now talks to node ``body["node"]``. Body keys: id, node."""
    client = sm.clients.get(body["id"])
    if client is None:
        return errors.UNKNOWN_CLIENT_ID
    if client.node == body["node"]:
        return None
    client.node = body["node"]
    ctx.txn.put_client(client.client_id, records.client_record(client))
    subs = tuple((subscriptions.opened(sub), tuple(sorted(sub.pending)))
                 for _, sub in sorted(client.subs.items()))
    ctx.effects.append(ClientMoved(client.client_id, client.node, subs))
    return None
