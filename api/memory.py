"""Giving memory back to the system (glibc; a no-op elsewhere).

After a large upload is parsed and stored, its arrays are freed, but glibc keeps the freed pages
in its heaps (raising its mmap threshold as large blocks are freed, so later large blocks land in
the heap too), and the server's RSS stays at its peak. ``malloc_trim(0)`` returns the free pages
of every arena; fewer arenas (``M_ARENA_MAX``) keep less memory stranded per worker thread; and a
fixed mmap threshold keeps large blocks (the arrays of a track) out of the heaps altogether, so
each is returned the moment it is freed and one large upload does not start from what the last
one left. Figures: bench/bench_memory_return.py, bench/bench_hostile.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from functools import lru_cache

# mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@lru_cache(maxsize=1)
def _glibc():
    if not hasattr(os, "confstr"):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.mallopt.argtypes = [ctypes.c_size_t], [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, ValueError, AttributeError):
        return None


def give_back() -> bool:
    """Collect cyclic garbage, then hand the heap's free pages back; True if anything was released."""
    gc.collect()
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas for this process (call before threads start); 0 leaves the
    default, and so does a MALLOC_ARENA_MAX the operator set."""
    libc = _glibc()
    if libc is None or count <= 0 or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def fix_mmap_threshold(size: int) -> bool:
    """Serve blocks of at least ``size`` bytes by mmap, whatever was freed before (glibc otherwise
    raises the threshold as large blocks are freed); 0 leaves glibc's dynamic threshold, and so
    does a MALLOC_MMAP_THRESHOLD_ the operator set."""
    libc = _glibc()
    if libc is None or size <= 0 or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, size))


def configure(server) -> None:
    """What ``mangrove serve`` sets before any worker thread starts (``server``: the
    ServerSettings); the per-request trim is the RequestLimits middleware's."""
    limit_arenas(server.malloc_arena_max)
    fix_mmap_threshold(server.malloc_mmap_threshold)
