"""Development backend: prints each message to standard output and accepts it."""

import sys
import uuid

from .base import BaseGateway, SendResult


class Gateway(BaseGateway):
    supports_voice = True

    def __init__(self, alias="default", stream=None, **options):
        super().__init__(alias, **options)
        self.stream = stream or sys.stdout

    def send_messages(self, messages):
        results = []
        for message in messages:
            sender = message.sender or "(default)"
            self.stream.write(f"[sms:{self.alias}] {message.kind} from {sender} to {message.to}: {message.text}\n")
            results.append(SendResult(ref=message.ref, accepted=True, carrier_id=uuid.uuid4().hex))
        self.stream.flush()
        return results
