"""How every `make bench` part runs as a program: SIGINT and SIGTERM unwind through
every ``finally`` (which stops the servers and generators), exit 130; a failed run
says why on one line, exit 1."""
from __future__ import annotations

import signal
import sys
from typing import Callable


def _terminate(signum, frame):
    raise KeyboardInterrupt


def run(main: Callable[[], int]) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every server and generator process was stopped", file=sys.stderr)
        sys.exit(130)
    except (RuntimeError, TimeoutError, ConnectionError) as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        sys.exit(1)
