"""Applying carrier events: delivery receipts and replies (SND-8, SND-9, SND-15, GW-2).

Every way a carrier reports back (the HTTP callback endpoint, the simulator, an SMPP connector
process) ends in :func:`apply_carrier_events`. It is idempotent and order-insensitive:

- Statuses only move forward. A receipt applies only when its rank is above the message's
  current status, and ``received`` and the failures (70+) are final, so a late or replayed
  "delivered to operator" never overwrites "received" and a replay changes no row.
- Multi-part messages: per-part receipts are kept in ``PartReceipt`` and folded into one status
  (every part received -> received; some received and the rest failed -> partially received;
  all failed -> the failure; otherwise the lowest part status).
- A receipt whose carrier id is not known yet (it overtook the submit response) is buffered in
  ``PendingReceipt`` and re-applied by :func:`pending_receipts_apply` when the id is recorded.
- Replies are matched to the **last message the gateway sent to that number from its default
  sender** (a custom alphanumeric sender cannot be answered), across accounts: when two
  accounts wrote to the same number, the reply belongs to the most recent message. STOP-like
  replies blacklist the number for that account at once (``BlacklistEntry.source = "stop"``).
"""

import hashlib
import hmac
import json
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from addressbook.models import BlacklistEntry

from .gateways.base import CarrierEvents, InboundSMS, Receipt, ReceiptStatus, normalize_carrier_id
from .models import Inbound, Message, PartReceipt, PendingReceipt

RECEIPT_RANK: dict[ReceiptStatus, int] = {
    ReceiptStatus.DELIVERED_OPERATOR: Message.Status.DELIVERED_OPERATOR,
    ReceiptStatus.RECEIVED: Message.Status.RECEIVED,
    ReceiptStatus.EXPIRED: Message.Status.EXPIRED,
    ReceiptStatus.REJECTED: Message.Status.REJECTED,
    ReceiptStatus.OPERATOR_TEMPORARY: Message.Status.OPERATOR_TEMPORARY,
    ReceiptStatus.OPERATOR_PERMANENT: Message.Status.OPERATOR_PERMANENT,
    ReceiptStatus.HANDSET_TEMPORARY: Message.Status.HANDSET_TEMPORARY,
    ReceiptStatus.HANDSET_PERMANENT: Message.Status.HANDSET_PERMANENT,
    ReceiptStatus.ANTISPAM: Message.Status.ANTISPAM,
}
FINAL_FROM = Message.Status.RECEIVED  # RECEIVED (60) and every failure (70+) never change again
FAILURE_FROM = Message.Status.INVALID
BATCH = 5000

_STOP_WORDS = frozenset(
    {"STOP", "STOPSMS", "STOP SMS", "ARRET", "ARRETER", "UNSUBSCRIBE", "DESABONNER", "DESINSCRIPTION", "STOP ALL"}
)


def is_stop(text: str) -> bool:
    """Whether a reply asks to stop (SND-9): STOP, stop, Stop., ARRET, ARRÊT, UNSUBSCRIBE, STOP SMS..."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    words = re.sub(r"[^A-Z]+", " ", folded).split()
    return " ".join(words) in _STOP_WORDS or "".join(words) in _STOP_WORDS


def apply_carrier_events(*, gateway_alias: str, events: CarrierEvents) -> None:
    """Apply a carrier's receipts and replies in bulk; idempotent, forward-only, order-insensitive.

    The ingestion contract for every carrier connector (HTTP callbacks, simulator, SMPP). One
    UPDATE per batch of 5,000 receipts on PostgreSQL; unknown carrier ids are buffered until
    the submit result records them.
    """
    receipts = list(events.receipts)
    for start in range(0, len(receipts), BATCH):
        _apply_receipts(gateway_alias, receipts[start : start + BATCH])
    if events.inbound:
        _apply_inbound(gateway_alias, list(events.inbound))


# --- receipts -------------------------------------------------------------------------------------


def _apply_receipts(alias: str, receipts: list[Receipt]) -> None:
    whole: dict[str, tuple[int, str, datetime]] = {}
    parts: list[tuple[str, int, int, str, datetime]] = []
    for receipt in receipts:
        rank = RECEIPT_RANK[ReceiptStatus(receipt.status)]
        cid = normalize_carrier_id(receipt.carrier_id)
        if receipt.part:
            parts.append((cid, receipt.part, rank, receipt.error, receipt.at))
            continue
        # Several receipts for one message in a batch: the highest rank wins (forward-only).
        current = whole.get(cid)
        if current is None or rank > current[0]:
            whole[cid] = (rank, receipt.error[:255], receipt.at)
    with transaction.atomic():
        if whole:
            _update_forward(alias, [(cid, rank, error, at) for cid, (rank, error, at) in whole.items()])
        if parts:
            _apply_parts(alias, parts)
        _buffer_unknown(alias, whole, parts)


def _update_forward(alias: str, rows: list[tuple[str, int, str, datetime]]) -> int:
    """Move each message (by carrier id) to its new status when that is a move forward."""
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE campaigns_message AS m
                   SET status = v.status, error = v.error, status_at = v.at
                  FROM unnest(%s::varchar[], %s::smallint[], %s::varchar[], %s::timestamptz[])
                       AS v(carrier_id, status, error, at)
                 WHERE m.gateway = %s AND m.carrier_id = v.carrier_id
                   AND m.status < %s AND m.status < v.status
                """,
                [
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                    [r[3] for r in rows],
                    alias,
                    int(FINAL_FROM),
                ],
            )
            return cursor.rowcount
    # SQLite (the zero-setup default): one UPDATE per (status, error) group of the batch.
    groups: dict[tuple[int, str], list[str]] = defaultdict(list)
    latest: dict[tuple[int, str], datetime] = {}
    for cid, rank, error, at in rows:
        groups[(rank, error)].append(cid)
        latest[(rank, error)] = max(at, latest.get((rank, error), at))
    changed = 0
    for (rank, error), cids in groups.items():
        changed += Message.objects.filter(gateway=alias, carrier_id__in=cids, status__lt=min(rank, FINAL_FROM)).update(
            status=rank, error=error, status_at=latest[(rank, error)]
        )
    return changed


def _fold(part_statuses: list[int], parts: int) -> int:
    """One message status from its parts' statuses (forward-only ranks)."""
    received = sum(1 for s in part_statuses if s == Message.Status.RECEIVED)
    failed = [s for s in part_statuses if s >= FAILURE_FROM]
    if received >= parts:
        return Message.Status.RECEIVED
    if len(part_statuses) >= parts and received + len(failed) >= parts:
        return Message.Status.PARTIALLY_RECEIVED if received else max(failed)
    return max((s for s in part_statuses if s < Message.Status.RECEIVED), default=Message.Status.DELIVERED_OPERATOR)


def _apply_parts(alias: str, parts: list[tuple[str, int, int, str, datetime]]) -> None:
    cids = {p[0] for p in parts}
    messages = dict(Message.objects.filter(gateway=alias, carrier_id__in=cids).values_list("carrier_id", "id"))
    if not messages:
        return
    best: dict[tuple[int, int], int] = {}
    for cid, part, rank, _error, _at in parts:
        if cid in messages:
            key = (messages[cid], part)
            best[key] = max(rank, best.get(key, 0))
    existing = {
        (m, p): s
        for m, p, s in PartReceipt.objects.filter(message_id__in=messages.values()).values_list(
            "message_id", "part", "status"
        )
    }
    creates, updates = [], []
    for (message_id, part), rank in best.items():
        old = existing.get((message_id, part))
        if old is None:
            creates.append(PartReceipt(message_id=message_id, part=part, status=rank))
        elif old < FINAL_FROM and rank > old:
            updates.append(PartReceipt(message_id=message_id, part=part, status=rank))
        existing[(message_id, part)] = rank if old is None or (old < FINAL_FROM and rank > old) else old
    PartReceipt.objects.bulk_create(creates, ignore_conflicts=True)
    for row in updates:  # bounded by the parts of this batch's messages, usually none
        PartReceipt.objects.filter(message_id=row.message_id, part=row.part, status__lt=row.status).update(
            status=row.status
        )
    by_message: dict[int, list[int]] = defaultdict(list)
    for (message_id, _part), status in existing.items():
        by_message[message_id].append(status)
    counts = dict(Message.objects.filter(id__in=by_message).values_list("id", "parts"))
    ids_to_cid = {v: k for k, v in messages.items()}
    errors = {messages[cid]: error for cid, _p, _r, error, _a in parts if error and cid in messages}
    at = max(p[4] for p in parts)
    _update_forward(
        alias,
        [
            (ids_to_cid[mid], _fold(statuses, counts.get(mid, 1)), errors.get(mid, "")[:255], at)
            for mid, statuses in by_message.items()
        ],
    )


def _buffer_unknown(alias: str, whole: dict, parts: list) -> None:
    wanted = set(whole) | {p[0] for p in parts}
    if not wanted:
        return
    known = set(Message.objects.filter(gateway=alias, carrier_id__in=wanted).values_list("carrier_id", flat=True))
    unknown = wanted - known
    if not unknown:
        return
    rows = [
        PendingReceipt(gateway=alias, carrier_id=cid, status=rank, error=error, at=at)
        for cid, (rank, error, at) in whole.items()
        if cid in unknown
    ]
    rows += [
        PendingReceipt(gateway=alias, carrier_id=cid, part=part, status=rank, error=error[:255], at=at)
        for cid, part, rank, error, at in parts
        if cid in unknown
    ]
    PendingReceipt.objects.bulk_create(rows, batch_size=BATCH)


def pending_receipts_apply(*, gateway_alias: str, carrier_ids: Iterable[str]) -> None:
    """Re-apply buffered receipts for carrier ids that were just recorded, then drop them."""
    carrier_ids = list(carrier_ids)
    if not carrier_ids:
        return
    pending = list(PendingReceipt.objects.filter(gateway=gateway_alias, carrier_id__in=carrier_ids))
    if not pending:
        return
    rank_to_status = {rank: status for status, rank in RECEIPT_RANK.items()}
    receipts = [
        Receipt(carrier_id=p.carrier_id, status=rank_to_status[p.status], at=p.at, error=p.error, part=p.part)
        for p in pending
    ]
    with transaction.atomic():
        PendingReceipt.objects.filter(id__in=[p.id for p in pending]).delete()
        _apply_receipts(gateway_alias, receipts)


# --- replies --------------------------------------------------------------------------------------


def _apply_inbound(alias: str, inbound: list[InboundSMS]) -> None:
    phones = {sms.sender for sms in inbound}
    last_ids = dict(
        Message.objects.filter(
            gateway=alias,
            phone__in=phones,
            carrier_id__isnull=False,
            campaign__sender="",
        )
        .values("phone")
        .annotate(last=Max("id"))
        .values_list("phone", "last")
    )
    owners = {
        mid: (account_id, campaign_id)
        for mid, account_id, campaign_id in Message.objects.filter(id__in=last_ids.values()).values_list(
            "id", "account_id", "campaign_id"
        )
    }
    rows, stops = [], set()
    for sms in inbound:
        message_id = last_ids.get(sms.sender)
        account_id, campaign_id = owners.get(message_id, (None, None))
        stop = is_stop(sms.text)
        if stop and account_id:
            stops.add((account_id, sms.sender))
        rows.append(
            Inbound(
                account_id=account_id,
                message_id=message_id,
                campaign_id=campaign_id,
                sender=sms.sender,
                recipient=sms.recipient,
                text=sms.text,
                is_stop=stop,
                gateway=alias,
                carrier_id=normalize_carrier_id(sms.carrier_id) if sms.carrier_id else "",
                received_at=sms.at or timezone.now(),
            )
        )
    with transaction.atomic():
        Inbound.objects.bulk_create(rows, ignore_conflicts=True)
        BlacklistEntry.objects.bulk_create(
            [
                BlacklistEntry(account_id=account_id, number=number, source=BlacklistEntry.Source.STOP)
                for account_id, number in stops
            ],
            ignore_conflicts=True,
        )


def parse_json_events(payload: dict) -> CarrierEvents:
    """The generic JSON callback body (README, "Carrier callbacks") as carrier events.

    ``{"receipts": [{"id", "status", "at"?, "error"?, "part"?}], "inbound": [{"from", "to", "text", "at"?, "id"?}]}``.
    Raises ``ValueError`` on any malformed item (the endpoint answers 400 and applies nothing).
    """
    now = timezone.now()

    def when(value):
        if not value:
            return now
        parsed = datetime.fromisoformat(value)
        if timezone.is_naive(parsed):
            raise ValueError("Timestamps must carry a UTC offset.")
        return parsed

    try:
        receipts = [
            Receipt(
                carrier_id=str(item["id"]),
                status=ReceiptStatus(item["status"]),
                at=when(item.get("at")),
                error=str(item.get("error", ""))[:255],
                part=int(item["part"]) if item.get("part") else None,
            )
            for item in payload.get("receipts", [])
        ]
        inbound = [
            InboundSMS(
                sender=str(item["from"]),
                recipient=str(item.get("to", "")),
                text=str(item["text"]),
                at=when(item.get("at")),
                carrier_id=str(item.get("id", "")),
            )
            for item in payload.get("inbound", [])
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"Malformed carrier event: {exc}") from exc
    return CarrierEvents(receipts=receipts, inbound=inbound)


class CallbackRejected(Exception):
    """A carrier callback that must change nothing: bad signature, stale timestamp, bad body."""


def callback_sign(*, body: bytes, timestamp: int, secret: str) -> str:
    """The signature a carrier sends in ``X-Sms-Signature``: hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _callback_events(*, body: bytes, timestamp: str, signature: str) -> CarrierEvents:
    secret = settings.SMS_CALLBACK_SECRET
    if not secret:
        raise CallbackRejected("Carrier callbacks are disabled (SMS_CALLBACK_SECRET is not set).")
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise CallbackRejected("Missing or malformed timestamp.") from None
    if abs(time.time() - ts) > settings.SMS_CALLBACK_MAX_AGE:
        raise CallbackRejected("Stale timestamp.")
    if not hmac.compare_digest(callback_sign(body=body, timestamp=ts, secret=secret), signature or ""):
        raise CallbackRejected("Bad signature.")
    try:
        return parse_json_events(json.loads(body))
    except (ValueError, AttributeError) as exc:
        raise CallbackRejected(f"Malformed body: {exc}") from None


def carrier_callback_apply(*, gateway_alias: str, body: bytes, timestamp: str, signature: str) -> CarrierEvents:
    """Authenticate a carrier's HTTP callback and apply its events (GW-2).

    The signature covers the timestamp and the raw body; a timestamp more than
    ``SMS_CALLBACK_MAX_AGE`` seconds away is refused, so a captured post cannot be replayed
    later, and one replayed within the window changes nothing (receipts are forward-only,
    replies unique by carrier id). Raises ``CallbackRejected`` and applies nothing otherwise.

    With a Redis broker the verified body is pushed onto a Redis list and applied in bulk by
    ``flush_carrier_callbacks`` (scheduled at most once per second per gateway): the endpoint
    answers without touching PostgreSQL and receipts are applied thousands at a time. Without
    Redis (zero-setup broker) the events are applied at once.
    """
    events = _callback_events(body=body, timestamp=timestamp, signature=signature)
    client = _callback_redis()
    if client is None:
        apply_carrier_events(gateway_alias=gateway_alias, events=events)
        return events
    # One round trip: push the body and raise the "flush scheduled" flag if it was down.
    _pushed, scheduled_now = (
        client.pipeline(transaction=False)
        .rpush(_buffer_key(gateway_alias), body)
        .set(_flag_key(gateway_alias), 1, nx=True, ex=5)
        .execute()
    )
    if scheduled_now:
        from .tasks import flush_carrier_callbacks

        flush_carrier_callbacks.delay(gateway_alias)
    return events


_redis_client = None


def _callback_redis():
    global _redis_client
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(url)
    return _redis_client


def _buffer_key(alias: str) -> str:
    return f"smsplatform:callbacks:{alias}"


def _flag_key(alias: str) -> str:
    return f"smsplatform:callbacks:{alias}:scheduled"


def carrier_callbacks_flush(*, gateway_alias: str, batch: int = 2000) -> int:
    """Apply the buffered callback bodies of a gateway in bulk; return how many bodies.

    The "scheduled" flag is cleared before draining, so a body pushed during the drain either
    is drained now or schedules the next flush. A crash mid-flush loses the popped bodies'
    application only until the carrier retries (it got a 200) -- hence bodies are re-pushed
    when applying fails.
    """
    client = _callback_redis()
    if client is None:
        return 0
    client.delete(_flag_key(gateway_alias))
    done = 0
    while bodies := client.lpop(_buffer_key(gateway_alias), batch):
        receipts, inbound = [], []
        for body in bodies:
            events = parse_json_events(json.loads(body))
            receipts += events.receipts
            inbound += events.inbound
        try:
            apply_carrier_events(gateway_alias=gateway_alias, events=CarrierEvents(receipts=receipts, inbound=inbound))
        except Exception:
            client.rpush(_buffer_key(gateway_alias), *bodies)
            raise
        done += len(bodies)
    return done
