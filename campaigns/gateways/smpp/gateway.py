"""The SMPP backend the sending tasks call: it hands batches to the connector process over Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence

from campaigns.gateways.base import (
    BaseGateway,
    MessageKind,
    OutgoingSMS,
    PermanentGatewayError,
    SendResult,
    TemporaryGatewayError,
)

from .status import State, gateway_status, key, redis_client


class Gateway(BaseGateway):
    """SMPP 3.4 carrier (GW-1), through the ``manage.py smpp_connector`` process holding the bind.

    ``send_messages`` pushes the batch onto ``smsplatform:smpp:<alias>:requests`` and waits on a
    reply key for the connector's results. The carrier id of a message is the normalised
    ``message_id`` of its **first** part; receipts of the other parts come back with that id and
    their ``part`` number, so one id per message is enough to match them (SND-15).

    OPTIONS: HOST, PORT, SYSTEM_ID, PASSWORD, SYSTEM_TYPE, RATE (submits/s, 0 = no cap), WINDOW
    (outstanding submits), DEFAULT_DATA_CODING (0 GSM 03.38, 1 IA5, 3 Latin-1), SOURCE_ADDR
    (sender when a message has none), REDIS_URL (default CELERY_BROKER_URL), REPLY_TIMEOUT
    (seconds the connector has to submit a batch, default 60), ENQUIRE_LINK_INTERVAL (seconds).
    """

    supports_voice = False

    def send_messages(self, messages: Sequence[OutgoingSMS]) -> list[SendResult]:
        results: dict[str, SendResult] = {}
        payload = []
        for message in messages:
            if message.kind != MessageKind.SMS:
                results[message.ref] = SendResult(ref=message.ref, accepted=False, error="Voice not supported by SMPP.")
            else:
                payload.append({"ref": message.ref, "to": message.to, "text": message.text, "sender": message.sender})
        if payload:
            results.update((result.ref, result) for result in self._submit(payload))
        return [results[message.ref] for message in messages]

    def _submit(self, payload: list[dict]) -> list[SendResult]:
        client = redis_client(self.options)
        status = gateway_status(self.alias, client=client)
        if status.state == State.AUTH_FAILED:
            raise PermanentGatewayError(status.detail)
        timeout = float(self.options.get("REPLY_TIMEOUT", 60))
        reply_key = key(self.alias, f"reply:{uuid.uuid4().hex}")
        request = json.dumps({"reply_key": reply_key, "deadline": time.time() + timeout, "messages": payload})
        client.rpush(key(self.alias, "requests"), request)
        # The connector stops starting submits at the deadline, so its answer lands before ours.
        answer = client.blpop([reply_key], timeout=timeout + min(10.0, timeout / 2))
        if answer is None:
            taken = not client.lrem(key(self.alias, "requests"), 1, request)
            raise TemporaryGatewayError(
                f"The SMPP connector for {self.alias!r} did not answer within {timeout:.0f} s "
                f"({'batch taken, results lost' if taken else 'nothing submitted'}; link: {status.state})."
            )
        return [SendResult(**item) for item in json.loads(answer[1])]
