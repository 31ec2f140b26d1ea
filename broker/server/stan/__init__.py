"""The STAN service of a node (see DESIGN.md in broker/server)."""
from .replication import Replicator
from .service import StanService, StanSettings

__all__ = ["Replicator", "StanService", "StanSettings"]
