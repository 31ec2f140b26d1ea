"""The asyncio shell of a node: listener, connections, router. See DESIGN.md."""
from .auth import Authenticator
from .router import Router, Subscription
from .server import InternalClient, NatsServer, ServerLimits

__all__ = ["Authenticator", "InternalClient", "NatsServer", "Router", "ServerLimits",
           "Subscription"]
