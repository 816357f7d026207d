"""Pace shared by every worker through Redis: a per-sender token bucket and a concurrency cap."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis

# GCRA as a reservation: each caller books the next free slot (n tokens at `rate` per second)
# and is told how long to wait for it. Redis' own clock is used, so workers' clocks never matter.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2]) * interval
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 60000)
local wait = tat - now - burst
if wait < 0 then wait = 0 end
return string.format('%.0f', wait)
"""

# A counting semaphore that survives crashes: holders are members scored by when they took
# the slot, and anything older than `ttl` is presumed dead and dropped.
_ACQUIRE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""


class TokenBucket:
    """`rate` tokens per second for one key (a sender), shared by all processes.

    `acquire(n)` blocks until n tokens are this caller's; an SMS of 3 segments costs 3 tokens.
    `burst` tokens may go at once after an idle spell (kept at 1 by default: pacing is exact).
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        rate: float,
        *,
        burst: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key = key
        self.interval_us = 1_000_000 / rate
        self.burst_us = max(0.0, burst - 1) * self.interval_us
        self.sleep = sleep
        self._reserve = redis.register_script(_RESERVE)

    def reserve(self, tokens: float = 1) -> float:
        """Book `tokens`; returns the seconds to wait before using them."""
        wait_us = self._reserve(
            keys=[self.key], args=[f"{self.interval_us:.3f}", tokens, f"{self.burst_us:.0f}"]
        )
        return int(wait_us) / 1_000_000

    def acquire(self, tokens: float = 1) -> float:
        wait = self.reserve(tokens)
        if wait > 0:
            self.sleep(wait)
        return wait


class RedisSemaphore:
    """At most `limit` holders at once across processes (Missive: 5 concurrent requests)."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        limit: int,
        *,
        ttl: float = 60.0,
        poll: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = redis
        self.key = key
        self.limit = limit
        self.ttl = ttl
        self.poll = poll
        self.sleep = sleep
        self._acquire = redis.register_script(_ACQUIRE_SLOT)

    @contextmanager
    def slot(self) -> Iterator[None]:
        token = uuid.uuid4().hex
        while not self._acquire(keys=[self.key], args=[self.limit, self.ttl, token]):
            self.sleep(self.poll)
        try:
            yield
        finally:
            self.redis.zrem(self.key, token)
