"""`make bench`: core NATS throughput of Runnel beside nats-server (see README.md)."""
