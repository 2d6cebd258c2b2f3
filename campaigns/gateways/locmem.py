"""In-memory backend for tests: accepted messages are appended to ``outbox`` (like mail.outbox)."""

import uuid

from .base import BaseGateway, MessageKind, SendResult


class _Outbox(list):
    """The accepted messages; a ref submitted again keeps its carrier id and is not added twice,
    like a carrier that deduplicates by client reference."""

    def __init__(self):
        super().__init__()
        self.carrier_ids: dict[str, str] = {}

    def clear(self):
        super().clear()
        self.carrier_ids.clear()


outbox = _Outbox()


class Gateway(BaseGateway):
    """Accepts every message (voice too) and keeps it in ``campaigns.gateways.locmem.outbox``.

    ``OPTIONS["REJECT"]``: E.164 numbers refused for good, to test the refund path;
    ``OPTIONS["SUPPORTS_VOICE"] = False`` makes it refuse voice.
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
                carrier_id = outbox.carrier_ids.get(message.ref)
                if carrier_id is None:
                    carrier_id = outbox.carrier_ids[message.ref] = uuid.uuid4().hex
                    outbox.append(message)
                results.append(
                    SendResult(
                        ref=message.ref,
                        accepted=True,
                        carrier_id=carrier_id,
                        parts=max(analyze(message.text).parts, 1),
                    )
                )
        return results
