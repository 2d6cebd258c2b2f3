"""The demo carrier: behaves like a real one, deterministically by the recipient's last digit.

It accepts or refuses at submit, then "later" (``OPTIONS["DELAY"]`` seconds, default 2) reports
delivery to the operator, then the final outcome, through ``campaigns.receipts.apply_carrier_events``
-- the same path a real carrier's receipts take. It speaks SMS and voice.

=================  ==============================================================================
Last digit         Outcome
=================  ==============================================================================
``0``              Refused at submit: "Invalid recipient (unknown number)" -> refunded.
``9``              Delivered to operator, then ``handset_permanent`` ("Handset unreachable").
``8``              Delivered to operator, received, then the handset replies ``STOP``.
``7``              Delivered to operator, received, then the handset replies ``Merci !``.
``1`` to ``6``     Delivered to operator, then received.
=================  ==============================================================================

Idempotent per message ref: the carrier id is derived from (alias, ref), so a resubmitted
message gets the same id and its receipts apply once (statuses only move forward, replies are
unique per carrier id). ``OPTIONS``: ``DELAY`` (seconds), ``NUMBER`` (the number replies are
sent to), ``RATE`` (messages per second).
"""

import hashlib

from .base import BaseGateway, CarrierEvents, InboundSMS, Receipt, ReceiptStatus, SendResult

DEFAULT_NUMBER = "+33700000000"


def carrier_id_for(alias: str, ref: str) -> str:
    return hashlib.sha256(f"simulator:{alias}:{ref}".encode()).hexdigest()[:24]


def events_for(*, step: int, items: list[tuple[str, str]], number: str, at) -> CarrierEvents:
    """The events of step 1 (delivered to operator) or step 2 (outcome, replies) for ``(carrier_id, phone)``."""
    if step == 1:
        return CarrierEvents(receipts=[Receipt(cid, ReceiptStatus.DELIVERED_OPERATOR, at) for cid, _p in items])
    receipts, inbound = [], []
    for cid, phone in items:
        digit = phone[-1:]
        if digit == "9":
            receipts.append(Receipt(cid, ReceiptStatus.HANDSET_PERMANENT, at, error="Handset unreachable"))
            continue
        receipts.append(Receipt(cid, ReceiptStatus.RECEIVED, at))
        if digit in ("7", "8"):
            text = "STOP" if digit == "8" else "Merci !"
            inbound.append(InboundSMS(sender=phone, recipient=number, text=text, at=at, carrier_id=f"mo{cid}"))
    return CarrierEvents(receipts=receipts, inbound=inbound)


class Gateway(BaseGateway):
    supports_voice = True

    def send_messages(self, messages):
        from campaigns.tasks import simulator_emit
        from campaigns.text import analyze

        results, accepted = [], []
        for message in messages:
            if message.to.endswith("0"):
                results.append(SendResult(ref=message.ref, accepted=False, error="Invalid recipient (unknown number)"))
                continue
            cid = carrier_id_for(self.alias, message.ref)
            accepted.append((cid, message.to))
            results.append(
                SendResult(ref=message.ref, accepted=True, carrier_id=cid, parts=analyze(message.text).parts)
            )
        if accepted:
            simulator_emit.apply_async(args=[self.alias, 1, accepted], countdown=self.delay)
        return results

    @property
    def delay(self) -> float:
        return float(self.options.get("DELAY", 2))

    @property
    def number(self) -> str:
        return self.options.get("NUMBER", DEFAULT_NUMBER)
