"""The core NATS client protocol, sans I/O: `Parser` turns bytes into events,
`writer` turns operations into bytes. See DESIGN.md beside this file."""
from . import errors, events, headers, subjects, writer
from .errors import ProtocolViolation
from .parser import CLIENT, MAX_CONTROL_LINE, MAX_PAYLOAD, SERVER, Parser

__all__ = ["Parser", "ProtocolViolation", "SERVER", "CLIENT", "MAX_CONTROL_LINE",
           "MAX_PAYLOAD", "errors", "events", "headers", "subjects", "writer"]
