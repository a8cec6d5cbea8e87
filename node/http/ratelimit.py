"""Token-bucket rate limits kept in the process's memory.

Used by authentication to cap what a caller holding a valid service token may cost: every accepted
service token stores its ``jti`` until it expires (replay protection), so the rate of accepted calls
bounds the replay table (rate × the token's lifetime) as well as the CPU. A call over the limit is
refused with 429 ``rate_limited`` (with ``Retry-After``) *before* its jti is stored.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


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


def retry_after(wait_s: float) -> int:
    """Whole seconds for a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(wait_s))
