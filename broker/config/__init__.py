"""Runnel's configuration: Go-style flags, the NATS configuration file, and ``Options``.

Built-in defaults < configuration file (``-c`` / ``-sc``) < command-line flags.
See DESIGN.md beside this file.
"""
from .flags import ConfigError
from .options import ChannelLimits, Options, StoreLimits, load_options, usage

__all__ = ["ChannelLimits", "ConfigError", "Options", "StoreLimits", "load_options", "usage"]
