"""A test carrier that records every submission in Redis, so separate worker processes (and a
SIGKILLed one) leave a durable trace. Like a carrier deduplicating by client reference, a ref
submitted again keeps its first carrier id and is delivered once; ``calls`` keeps every attempt."""

import time
import uuid

import redis

from campaigns.gateways.base import BaseGateway, SendResult


class Gateway(BaseGateway):
    supports_voice = True

    def open(self):
        self.redis = redis.Redis.from_url(self.options["REDIS_URL"])
        self.key = self.options["KEY"]

    def send_messages(self, messages):
        results = []
        for message in messages:
            time.sleep(float(self.options.get("SLEEP", 0)))
            self.redis.rpush(f"{self.key}:calls", message.ref)
            self.redis.hsetnx(f"{self.key}:carrier", message.ref, uuid.uuid4().hex)
            self.redis.hincrby(f"{self.key}:delivered", message.ref, 0)
            if self.redis.hsetnx(f"{self.key}:seen", message.ref, 1):
                self.redis.hincrby(f"{self.key}:delivered", message.ref, 1)
            carrier_id = self.redis.hget(f"{self.key}:carrier", message.ref).decode()
            results.append(SendResult(ref=message.ref, accepted=True, carrier_id=carrier_id))
        return results
