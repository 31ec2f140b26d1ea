"""HTTP monitoring of a node (reference §5): read-only views, served by aiohttp. See DESIGN.md.

`Monitor(node)` serves the core NATS endpoints; further endpoints, Prometheus
collectors and health checks come from `Provider` objects.
"""
from .provider import Endpoint, MonitorError, Provider, Reply
from .service import Monitor, json_response

__all__ = ["Endpoint", "Monitor", "MonitorError", "Provider", "Reply", "json_response"]
