"""What this machine offers a scenario: root, network namespaces, FUSE."""
from __future__ import annotations

import os
import shutil


def unavailable(needs: tuple[str, ...]) -> str:
    """Why a scenario needing ``needs`` cannot run here ("" when it can)."""
    for need in needs:
        if need in ("netns", "fuse") and os.geteuid() != 0:
            return f"{need} needs root"
        if need == "netns" and not (shutil.which("ip") and shutil.which("iptables")):
            return "ip or iptables missing (apt-get install iproute2 iptables)"
        if need == "fuse":
            why = fuse_unavailable()
            if why:
                return why
    return ""


def fuse_unavailable() -> str:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse missing"
    try:
        import fuse  # noqa: F401  (fusepy)
        del fuse
    except (ImportError, OSError, EnvironmentError) as exc:
        return f"fusepy or libfuse missing: {exc}"
    return ""
