"""Every rate limit and concurrency cap of the program, in one place (DESIGN §10, issue 20).

* :class:`RateLimiter` — a token bucket per key (``rate`` a second, bursts of ``burst``): what a caller
  holding a valid service token may cost a node (each accepted token's ``jti`` is stored until it
  expires, so the rate also bounds the replay table), checked *before* the jti is stored;
* :class:`WindowLimiter` — at most ``per_min`` calls per key in any sliding minute (anonymous
  ``live=true`` searches per client address, notifications per node), with a bounded number of keys
  held (the oldest forgotten first), so that the limiter itself cannot be made to grow;
* :class:`ConcurrencyCap` — at most ``limit`` at once; one more is refused at once, never queued.

Both refuse with :class:`node.errors.RateLimited` (429 ``rate_limited``, ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from node.errors import RateLimited

MAX_KEYS = 10_000
WINDOW_S = 60.0


@dataclass
class RateLimiter:
    """``rate`` events a second per key, in bursts of up to ``burst``; at most ``max_keys`` keys kept
    (the least recently used bucket is dropped first: a dropped key starts again with a full bucket,
    so the memory stays bounded whatever the keys)."""

    rate: float
    burst: float
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0.0 if allowed, else the seconds until one is available."""
        now = self.clock()
        tokens, stamp = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) / self.rate
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class WindowLimiter:
    """``per_min`` calls per key in any sliding ``window_s`` (default one minute)."""

    def __init__(self, per_min: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS) -> None:
        self.per_min, self.window_s, self.clock, self.max_keys = per_min, window_s, clock, max_keys
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float | None:
        """Count one call of ``key`` now; None when allowed, else the seconds until it would be."""
        now = self.clock()
        calls = self._calls.pop(key, None) or deque()
        while calls and calls[0] <= now - self.window_s:
            calls.popleft()
        self._calls[key] = calls  # most recent last
        while len(self._calls) > self.max_keys:
            self._calls.popitem(last=False)
        if len(calls) >= self.per_min:
            return max(calls[0] + self.window_s - now, 0.001)
        calls.append(now)
        return None

    def check(self, key: str, what: str) -> None:
        """Count one call of ``key``.

        Raises:
            RateLimited: over the limit (``retry_after_s`` set).
        """
        wait = self.retry_after(key)
        if wait is not None:
            raise RateLimited(f"{what}: at most {self.per_min} per minute; retry in {math.ceil(wait)} s",
                              retry_after_s=math.ceil(wait))


class ConcurrencyCap:
    """At most ``limit`` holders at once (one event loop); one more is refused, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0

    @contextlib.contextmanager
    def slot(self, what: str) -> Iterator[None]:
        """Hold one slot for the block.

        Raises:
            RateLimited: every slot is taken (``retry_after_s`` = 1).
        """
        if self.running >= self.limit:
            raise RateLimited(f"{what}: {self.limit} already running; retry shortly", retry_after_s=1)
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1


def retry_after(wait_s: float) -> int:
    """Whole seconds for a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(wait_s))
