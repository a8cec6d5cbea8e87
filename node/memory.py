"""The process's allocator policy (glibc's malloc; elsewhere every call here is a no-op).

Two things, both measured on a serving hub at 1M records (docs/performance.md, "Memory"):

- :func:`fix_mmap_threshold` — glibc serves blocks of at least ``M_MMAP_THRESHOLD`` with their own
  ``mmap``, handed back to the system when freed. By default the threshold is *dynamic*: it starts
  at 128 KiB and freeing such a block raises it to that block's size (up to 32 MiB), so the next large
  blocks — the index build's chunks, its per-document arrays — come from the heap, and the heap they
  leave behind stays resident, fragmented by the small objects allocated between them. Setting the
  threshold explicitly turns the dynamic raise off (``mallopt(3)``). Measured at 1M records
  (docs/performance.md, "Memory"): 320 MB serving with the dynamic threshold, 298 MB with 8 MiB at
  the same latency, 252 MB with 128 KiB — but every search then maps and faults in its scratch
  arrays afresh (+3-7 ms of CPU per search). The setting ``malloc_mmap_threshold_kib`` (default
  8192; ``ncc serve``) chooses it; 0 keeps glibc's dynamic behaviour.
- :func:`release_free_memory` — ``malloc_trim(0)``: free pages inside the heap go back to the
  system (called after the accelerator's build, which frees its chunks as it goes), and by
  :class:`IdleTrim` once searches pause: a burst of searches reuses the heap's freed blocks (fast),
  and what they left free is returned when the burst is over.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import time
from collections.abc import Callable
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


class IdleTrim:
    """:func:`release_free_memory` once nothing has called :meth:`touch` for ``idle_s`` seconds.

    ``touch`` is cheap (a clock read, and one timer per idle period): the search service calls it after
    every search. The trim runs on the event loop once the process is idle: measured on a fragmented
    550 MB heap it takes ~13 ms when it hands pages back and < 0.3 ms when nothing is free, so a request
    arriving just then waits at most that long.
    A timer left on a loop that has ended (a service used from several loops, as tests do) is
    forgotten: the next ``touch`` arms one on its own loop.
    """

    def __init__(self, idle_s: float = 2.0, trim: Callable[[], None] = release_free_memory,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s, self._trim, self._clock = idle_s, trim, clock
        self._last = 0.0
        self._armed_on: asyncio.AbstractEventLoop | None = None

    def touch(self) -> None:
        self._last = self._clock()
        loop = asyncio.get_running_loop()
        if self._armed_on is not loop:
            self._armed_on = loop
            loop.call_later(self.idle_s, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._armed_on is not loop:  # re-armed on another loop meanwhile
            return
        idle = self._clock() - self._last
        if idle < self.idle_s:  # touched meanwhile: look again when it may have gone quiet
            loop.call_later(self.idle_s - idle, self._check, loop)
            return
        self._armed_on = None
        self._trim()
