"""Jepsen-style fault runs against a local Runnel cluster: supervisor, workload,
nemeses, a recorded history and a checker. See chaos/DESIGN.md."""
