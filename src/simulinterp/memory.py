"""Keeping a long-running process's memory flat (the server, hour-long talks).

In the first 15 minutes of a 2-session soak (bench/serve) the server's resident memory grew
by about 30 MB a minute, all of it in glibc's per-thread heaps (``/proc/PID/smaps``: ten 64 MB
anonymous regions fully resident, an eleventh filling). The likely cause: buffers that grow by
a little at each step (the recognizer's audio window is re-allocated at each insert) are
allocated and freed from several threads; once glibc has raised its mmap threshold they come
from those heaps, and the freed holes rarely fit the next, larger buffer. A fixed mmap
threshold sends every buffer of 128 KiB and more to its own mapping, returned to the system
when freed, and two heaps are enough for the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def limit_heap_growth(mmap_threshold_bytes: int = 128 * 1024, arenas: int = 2) -> bool:
    """Tune glibc's allocator for a long run (call once, early, before the threads start).

    Args:
        mmap_threshold_bytes: allocations from this size on get their own mapping (fixed:
            glibc no longer raises it).
        arenas: malloc heaps at most (threads share them).

    Returns:
        True when glibc took the settings; False elsewhere (macOS, musl): nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = all(
        mallopt(option, value) == 1
        for option, value in (
            (_M_MMAP_THRESHOLD, mmap_threshold_bytes),
            (_M_TRIM_THRESHOLD, 2 * mmap_threshold_bytes),
            (_M_ARENA_MAX, arenas),
        )
    )
    logger.debug("glibc mallopt %s", "applied" if done else "refused")
    return done
