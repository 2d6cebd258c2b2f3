"""Per-gateway throughput cap shared by every worker (GW-3).

A token bucket in Redis keyed by gateway alias, refilled at ``rate`` tokens per second with a
burst of one second's worth; a Lua script takes tokens atomically, so any number of worker
processes on any number of hosts together stay under the carrier's limit.

With the zero-setup ``filesystem://`` broker there is no Redis: the bucket then lives in the
process, which caps each worker process separately (N processes may reach N x rate). Run Redis
when the carrier's limit matters.
"""

import threading
import time

from django.conf import settings

_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local burst = math.max(rate, want)
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = (want - tokens) / rate
end
redis.call('HSET', key, 'tokens', tokens, 'at', now)
redis.call('EXPIRE', key, 60)
return tostring(wait)
"""

_local_lock = threading.Lock()
_local_buckets: dict[str, tuple[float, float]] = {}
_redis_client = None
_script = None


def _redis():
    global _redis_client, _script
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(url)
        _script = _redis_client.register_script(_LUA)
    return _script


def _take_local(alias: str, rate: float, want: int) -> float:
    with _local_lock:
        now = time.monotonic()
        burst = max(rate, want)
        tokens, at = _local_buckets.get(alias, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens >= want:
            _local_buckets[alias] = (tokens - want, now)
            return 0.0
        _local_buckets[alias] = (tokens, now)
        return (want - tokens) / rate


def take(*, alias: str, rate: float, count: int) -> float:
    """Try to take ``count`` tokens; return 0 when taken, else the seconds to wait before retrying."""
    if rate <= 0:
        return 0.0
    script = _redis()
    if script is None:
        return _take_local(alias, rate, count)
    return float(script(keys=[f"smsplatform:ratelimit:{alias}"], args=[rate, count, time.time()]))


def acquire(*, alias: str, rate: float, count: int) -> None:
    """Block until ``count`` messages may go to gateway ``alias`` (no-op when ``rate`` is 0)."""
    while (wait := take(alias=alias, rate=rate, count=count)) > 0:
        time.sleep(min(wait, 1.0))
