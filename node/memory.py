"""The process's allocator policy (glibc's malloc; elsewhere every call here is a no-op).

Two things, both measured on a serving hub at 1M records (docs/performance.md, "Memory"):

- :func:`fix_mmap_threshold` — glibc serves blocks of at least ``M_MMAP_THRESHOLD`` (128 KiB) with
  their own ``mmap``, handed back to the system when freed. But by default the threshold is
  *dynamic*: freeing such a block raises it to that block's size (up to 32 MiB), so the next large
  blocks — numpy's per-query scratch arrays, the index build's chunks — come from the heap, and the
  heap they leave behind stays resident, fragmented by the small objects allocated between them.
  Setting the threshold explicitly turns the dynamic raise off (``mallopt(3)``): at 1M records the
  serving hub held 340 MB by default and 256 MB with the threshold fixed at 128 KiB. The setting
  ``malloc_mmap_threshold_kib`` (``ncc serve``) chooses it; 0 keeps glibc's dynamic behaviour.
- :func:`release_free_memory` — ``malloc_trim(0)``: free pages inside the heap go back to the
  system (called after the accelerator's build, which frees its chunks as it goes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

#: ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: glibc's largest ``M_MMAP_THRESHOLD`` on 64-bit systems (``HEAP_MAX_SIZE / 2``).
MMAP_THRESHOLD_MAX_KIB = 32 * 1024

log = logging.getLogger("ncc.memory")


@functools.cache
def _libc() -> Any:
    """glibc's functions, or None (another C library, or none found)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def fix_mmap_threshold(kib: int) -> bool:
    """Serve blocks of ``kib`` KiB and more with their own mappings, and stop glibc from raising that
    threshold as blocks are freed. ``0`` leaves glibc's default (dynamic) alone.

    Returns whether the threshold was set (False: 0 asked, or not glibc).

    Raises:
        ValueError: ``kib`` outside 0..:data:`MMAP_THRESHOLD_MAX_KIB` (glibc would refuse it).
    """
    if not 0 <= kib <= MMAP_THRESHOLD_MAX_KIB:
        raise ValueError(f"mmap threshold {kib} KiB: must be between 0 and {MMAP_THRESHOLD_MAX_KIB}")
    libc = _libc()
    if kib == 0 or libc is None:
        return False
    if libc.mallopt(M_MMAP_THRESHOLD, kib * 1024) != 1:  # mallopt returns 1 on success
        log.warning("mallopt(M_MMAP_THRESHOLD) refused; the allocator keeps its dynamic threshold")
        return False
    return True


def release_free_memory() -> None:
    """Hand the allocator's free pages back to the system (glibc ``malloc_trim``).

    A build reads every document once: its rows, token lists and postings are freed chunk by chunk,
    but glibc keeps the freed pages in the process (RSS) unless asked.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
