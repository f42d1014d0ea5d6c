"""Is a driver process still alive?  The one test behind every "stale" decision: runs left
RUNNING, run claims and private store builds of a killed driver are released by it."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True if a process with this id exists on this host (also one we may not signal)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
