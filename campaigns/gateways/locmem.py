"""In-memory backend for tests: accepted messages are appended to ``outbox`` (like mail.outbox)."""

import uuid

from .base import BaseGateway, MessageKind, SendResult

outbox: list = []


class Gateway(BaseGateway):
    """Accepts every message (voice too) and keeps it in ``campaigns.gateways.locmem.outbox``.

    ``OPTIONS["REJECT"]``: E.164 numbers refused for good, to test the refund path.
    """

    supports_voice = True

    def send_messages(self, messages):
        from campaigns.text import analyze

        rejected = set(self.options.get("REJECT", ()))
        results = []
        for message in messages:
            if message.kind == MessageKind.VOICE and not self.supports_voice:
                results.append(SendResult(ref=message.ref, accepted=False, error="Voice not supported."))
            elif message.to in rejected:
                results.append(SendResult(ref=message.ref, accepted=False, error="Invalid recipient."))
            else:
                outbox.append(message)
                results.append(
                    SendResult(
                        ref=message.ref,
                        accepted=True,
                        carrier_id=uuid.uuid4().hex,
                        parts=max(analyze(message.text).parts, 1),
                    )
                )
        return results
