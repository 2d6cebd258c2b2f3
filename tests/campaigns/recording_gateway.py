"""A test carrier that records every submission in Redis, so separate worker processes (and a
SIGKILLed one) leave a durable trace. Like a carrier deduplicating by client reference, a ref
submitted again keeps its first carrier id and is delivered once; ``calls`` keeps every attempt.

Each submission is recorded by one Lua script, atomic on the server: a worker killed between two
separate commands could otherwise mark a ref as seen without counting its delivery."""

import time
import uuid

import redis

from campaigns.gateways.base import BaseGateway, SendResult

RECORD = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
if redis.call('HSETNX', KEYS[4], ARGV[1], 1) == 1 then
    redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
end
return redis.call('HGET', KEYS[2], ARGV[1])
"""


class Gateway(BaseGateway):
    supports_voice = True

    def open(self):
        self.redis = redis.Redis.from_url(self.options["REDIS_URL"])
        self.key = self.options["KEY"]
        self.record = self.redis.register_script(RECORD)

    def send_messages(self, messages):
        keys = [f"{self.key}:{suffix}" for suffix in ("calls", "carrier", "delivered", "seen")]
        results = []
        for message in messages:
            time.sleep(float(self.options.get("SLEEP", 0)))
            carrier_id = self.record(keys=keys, args=[message.ref, uuid.uuid4().hex]).decode()
            results.append(SendResult(ref=message.ref, accepted=True, carrier_id=carrier_id))
        return results
