"""The deterministic STAN state machine (see DESIGN.md). Imports storage's
interface and protocol message types only: no asyncio, no sockets, no clock."""
from . import effects, envelope
from .limits import ChannelLimits, LimitsResolver
from .machine import StateMachine

__all__ = ["ChannelLimits", "LimitsResolver", "StateMachine", "effects", "envelope"]
