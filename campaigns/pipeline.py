"""The sending pipeline's services: dispatch, expand, claim, submit, record (DESIGN.md).

::

    beat ─ dispatch_due_campaigns ─> campaign_claim_due ─> expand_campaign task ─> campaign_expand
        (scheduled -> dispatching)          (one transaction: messages + debit; dispatching -> sending)
                                                              │ on commit
                                                              ▼
                       submit_batch tasks (id ranges of 500) ─> messages_submit ─> gateway.send_messages
                                                                                   └> messages_record_results

Exactly-once submission. A batch first *claims* its messages with a conditional UPDATE
(``QUEUED -> SUBMITTING`` with a fresh ``claim_token``), so two workers running the same task
(Celery redelivers with ``acks_late``) never take the same message. Results are recorded per
gateway call of at most ``SUBMIT_CHUNK`` messages, and only onto messages that have no carrier
id yet, so recording twice changes nothing. A worker killed mid-batch leaves ``SUBMITTING``
messages without carrier id; ``messages_requeue_stale`` (beat housekeeping) puts those older
than the lease back to ``QUEUED`` and they are submitted again. The lease is longer than the
task time limit, so the original worker is certainly dead by then.

The only window where a message could reach a carrier twice is a kill *after* the carrier
accepted a chunk and *before* its results were recorded (at most one chunk per dead worker).
Our ``locmem`` and ``simulator`` gateways are idempotent per message ref (a resubmitted ref
returns its first carrier id and is not delivered again), which makes submission exactly-once;
a real carrier that does not deduplicate by client reference gives at-least-once for that one
chunk. The kill test (tests/campaigns/test_tasks_kill_worker.py) proves the claim end to end.
"""

import hashlib
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from addressbook.models import Membership
from addressbook.services import blacklisted_numbers, contacts_delete_numbers
from billing.pricing import RateTable, UncoveredDestination
from billing.services import InsufficientCredits, ledger_post

from . import ratelimit
from .gateways import MessageKind, OutgoingSMS, SendResult, TemporaryGatewayError, get_gateway
from .models import Campaign, GatewayHealth, Message
from .receipts import normalize_carrier_id, pending_receipts_apply
from .text import analyze, has_variables, personalise

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # messages per submit task
EXPAND_CHUNK = 5000  # recipients per blacklist query and bulk insert
SUBMIT_CHUNK = 100  # messages per gateway call (and per results record)


def submit_lease() -> timedelta:
    """How long a claim may stay without result before housekeeping re-queues it."""
    return timedelta(seconds=getattr(settings, "SMS_SUBMIT_LEASE_SECONDS", settings.CELERY_TASK_TIME_LIMIT + 60))


def gateway_alias_for(campaign: Campaign) -> str:
    """Voice campaigns on the default alias go to the ``voice`` alias when one is configured."""
    if campaign.kind == Campaign.Kind.VOICE and campaign.gateway == "default" and "voice" in settings.SMS_GATEWAYS:
        return "voice"
    return campaign.gateway


# --- dispatch -------------------------------------------------------------------------------------


def campaign_claim_due(*, now=None, limit: int = 50) -> list[int]:
    """Claim due scheduled campaigns (``scheduled -> dispatching``); return their ids.

    Campaigns of accounts that cannot send (blocked, inactive, email unconfirmed) are skipped and
    stay scheduled, so they leave as soon as the account is unblocked. Safe with concurrent
    dispatchers: rows are locked with ``SKIP LOCKED`` on PostgreSQL, and the claim itself is a
    conditional UPDATE on ``status='scheduled'`` (which is what serialises on SQLite).
    """
    now = now or timezone.now()
    due = Campaign.objects.filter(
        status=Campaign.Status.SCHEDULED,
        scheduled_at__lte=now,
        account__is_active=True,
        account__email_confirmed_at__isnull=False,
        account__blocked_at__isnull=True,
    ).order_by("scheduled_at")
    with transaction.atomic():
        ids = list(due.select_for_update(skip_locked=True, of=("self",)).values_list("id", flat=True)[:limit])
        if not ids:
            return []
        claimed = list(
            Campaign.objects.filter(id__in=ids, status=Campaign.Status.SCHEDULED).values_list("id", flat=True)
        )
        Campaign.objects.filter(id__in=claimed, status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.DISPATCHING, dispatched_at=now
        )
    return claimed


# --- expand ---------------------------------------------------------------------------------------

_RecipientRow = tuple[str, str, dict[str, str] | None]


def _recipients(campaign: Campaign) -> Iterator[_RecipientRow]:
    """Every recipient of the campaign, contacts first (they personalise), duplicates included."""
    # Walk the join tables to the contacts by primary key: a plan that stays linear at 1M.
    fields = ("mobile", "region", "last_name", "first_name", "email", "company")
    direct = Campaign.contacts.through.objects.filter(campaign_id=campaign.pk)
    grouped = Membership.objects.filter(
        group_id__in=Campaign.groups.through.objects.filter(campaign_id=campaign.pk).values("group_id"),
        contact__account_id=campaign.account_id,
    )
    for queryset in (direct, grouped):
        rows = queryset.values_list(*(f"contact__{f}" for f in fields)).iterator(chunk_size=5000)
        for mobile, region, last, first, email, company in rows:
            yield mobile, region, {"nom": last, "prenom": first, "email": email, "societe": company}
    for number in campaign.numbers:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
        except phonenumbers.NumberParseException:
            region = ""
        yield number, region, None


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fail(campaign_id: int, reason: str) -> None:
    Campaign.objects.filter(pk=campaign_id).update(
        status=Campaign.Status.FAILED, failure_reason=reason, completed_at=timezone.now()
    )


def campaign_expand(*, campaign_id: int) -> bool:
    """Turn a dispatching campaign into messages and debit its cost, all or nothing (SND-5, BIL).

    Dedupes by E.164 number, drops blacklisted numbers (counted), personalises, prices each
    message by destination (a destination without a rate becomes an ``INVALID`` message, not
    charged), bulk-inserts the messages and posts one ``send`` ledger entry for the total in the
    same transaction. Short balance: nothing is written, the campaign fails with the reason and
    the user is emailed. Returns True when messages were queued (the caller enqueues batches).
    Does nothing for a campaign that is not ``dispatching`` (a redelivered task).
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().select_related("account").filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.DISPATCHING:
            return False
        alias = gateway_alias_for(campaign)
        gateway = get_gateway(alias)
        if campaign.kind == Campaign.Kind.VOICE and not gateway.supports_voice:
            _fail(campaign.pk, _("The gateway %(alias)s cannot send voice messages.") % {"alias": alias})
            return False
        try:
            queued = _expand_into_messages(campaign, alias)
        except InsufficientCredits as exc:
            transaction.set_rollback(True)
            needed, balance = exc.needed, exc.balance
        else:
            return queued
    _fail(
        campaign_id,
        _("Insufficient credits: %(needed)s needed, %(balance)s available. Nothing was debited.")
        % {"needed": needed, "balance": balance},
    )
    transaction.on_commit(lambda: _email_insufficient(campaign, needed))
    return False


def _expand_into_messages(campaign: Campaign, alias: str) -> bool:
    rates = RateTable.load(campaign.kind)
    personalised = has_variables(campaign.text)
    plain_parts = max(analyze(campaign.text).parts, 1)
    seen: set[str] = set()
    total_rows = recipients = blacklisted = 0
    total = Decimal(0)
    for chunk in _chunks(_recipients(campaign), EXPAND_CHUNK):
        total_rows += len(chunk)
        fresh = []
        for row in chunk:
            if row[0] not in seen:
                seen.add(row[0])
                fresh.append(row)
        banned = blacklisted_numbers(account_id=campaign.account_id, numbers=[r[0] for r in fresh])
        rows = []
        for phone, region, fields in fresh:
            if phone in banned:
                blacklisted += 1
                continue
            text = personalise(campaign.text, fields or {}) if personalised else campaign.text
            parts = max(analyze(text).parts, 1) if personalised else plain_parts
            try:
                credits, status, error = rates.price(region=region, parts=parts), Message.Status.QUEUED, ""
            except UncoveredDestination as exc:
                credits, status, error = Decimal(0), Message.Status.INVALID, str(exc)[:255]
            total += credits
            rows.append((phone, region, text, parts, credits, status, error))
        recipients += len(rows)
        _insert_messages(campaign, alias, rows)
    if total > 0:
        ledger_post(
            account_id=campaign.account_id,
            kind="send",
            amount=-total,
            reference=f"campaign {campaign.uuid}",
            idempotency_key=f"campaign:{campaign.pk}:debit",
            campaign_id=campaign.pk,
        )
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENDING if recipients else Campaign.Status.DONE,
        recipients_count=recipients,
        duplicates_count=total_rows - len(seen),
        blacklisted_count=blacklisted,
        credits_debited=total,
        completed_at=None if recipients else timezone.now(),
    )
    return recipients > 0


_COPY_COLUMNS = (
    "campaign_id, account_id, phone, region, text, parts, credits, status, error, gateway, attempts, created_at"
)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escape(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _insert_messages(campaign: Campaign, alias: str, rows: list[tuple]) -> None:
    """Bulk-insert ``(phone, region, text, parts, credits, status, error)`` rows: COPY on
    PostgreSQL (about 6x ``bulk_create``, PERF.md), ``bulk_create`` elsewhere."""
    if not rows:
        return
    now = timezone.now()
    if connection.vendor == "postgresql":
        # COPY's text format written directly: psycopg's write_row costs ~9 us per row in Python.
        head = f"{campaign.pk}\t{campaign.account_id}\t"
        tail = f"\t{_copy_escape(alias)}\t0\t{now.isoformat()}\n"
        buffer = "".join(
            f"{head}{phone}\t{region}\t{_copy_escape(text)}\t{parts}\t{credits}\t{status}\t{_copy_escape(error)}{tail}"
            for phone, region, text, parts, credits, status, error in rows
        )
        with connection.cursor() as cursor, cursor.copy(f"COPY campaigns_message ({_COPY_COLUMNS}) FROM STDIN") as copy:
            copy.write(buffer.encode())
        return
    Message.objects.bulk_create(
        [
            Message(
                campaign_id=campaign.pk,
                account_id=campaign.account_id,
                phone=phone,
                region=region,
                text=text,
                parts=parts,
                credits=credits,
                status=status,
                error=error,
                gateway=alias,
            )
            for phone, region, text, parts, credits, status, error in rows
        ],
        batch_size=1000,
    )


def _email_insufficient(campaign: Campaign, needed: Decimal) -> None:
    send_mail(
        _("Your SMS campaign could not be sent"),
        _(
            "Your campaign of %(date)s was not sent: it needs %(needed)s credits and your balance is "
            'too low. Nothing was debited. Buy credits, then send it again from "My SMS".'
        )
        % {"date": timezone.localtime(campaign.created_at).strftime("%d/%m/%Y %H:%M"), "needed": needed},
        None,
        [campaign.account.email],
    )


def campaign_batches(*, campaign_id: int) -> Iterator[tuple[int, int]]:
    """Id ranges ``(first, last)`` of at most ``BATCH_SIZE`` queued messages, streamed by keyset."""
    ids = (
        Message.objects.filter(campaign_id=campaign_id, status=Message.Status.QUEUED)
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=10 * BATCH_SIZE)
    )
    for chunk in _chunks(ids, BATCH_SIZE):
        yield chunk[0], chunk[-1]


# --- submit ---------------------------------------------------------------------------------------


def messages_claim(*, campaign_id: int, first_id: int, last_id: int, token: uuid.UUID) -> list[tuple[int, str, str]]:
    """Atomically take the still-queued messages of an id range; return ``(id, phone, text)``."""
    now = timezone.now()
    Message.objects.filter(campaign_id=campaign_id, id__range=(first_id, last_id), status=Message.Status.QUEUED).update(
        status=Message.Status.SUBMITTING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1
    )
    return list(Message.objects.filter(claim_token=token).order_by("id").values_list("id", "phone", "text"))


def _health(alias: str, **changes) -> None:
    updated = GatewayHealth.objects.filter(alias=alias).update(**changes)
    if not updated:
        GatewayHealth.objects.get_or_create(alias=alias)
        GatewayHealth.objects.filter(alias=alias).update(**changes)


def messages_submit(*, campaign_id: int, first_id: int, last_id: int) -> int:
    """Claim the queued messages of an id range and submit them; return how many were submitted.

    Calls the gateway in chunks of ``SUBMIT_CHUNK`` under the per-gateway rate cap and records
    each chunk's results before the next call. ``TemporaryGatewayError``: the unsent claims go
    back to ``QUEUED`` and the error propagates (the task retries with backoff). Messages the
    gateway refuses for now (``retryable``) also go back to ``QUEUED``; the caller re-submits.
    """
    campaign = Campaign.objects.only("id", "kind", "sender", "gateway").get(pk=campaign_id)
    token = uuid.uuid4()
    claimed = messages_claim(campaign_id=campaign_id, first_id=first_id, last_id=last_id, token=token)
    if not claimed:
        campaign_finish_if_done(campaign_id=campaign_id)
        return 0
    alias = gateway_alias_for(campaign)
    gateway = get_gateway(alias)
    kind = MessageKind(campaign.kind)
    sent = 0
    try:
        with gateway:
            for chunk in _chunks(claimed, SUBMIT_CHUNK):
                outgoing = [
                    OutgoingSMS(ref=str(mid), to=phone, text=text, sender=campaign.sender, kind=kind)
                    for mid, phone, text in chunk
                ]
                if kind == MessageKind.VOICE and not gateway.supports_voice:
                    results = [
                        SendResult(ref=m.ref, accepted=False, error="This gateway cannot send voice messages.")
                        for m in outgoing
                    ]
                else:
                    ratelimit.acquire(alias=alias, rate=gateway.rate, count=len(outgoing))
                    results = gateway.send_messages(outgoing)
                messages_record_results(gateway_alias=alias, results=results)
                sent += sum(1 for r in results if r.accepted)
    except TemporaryGatewayError as exc:
        Message.objects.filter(claim_token=token, status=Message.Status.SUBMITTING, carrier_id__isnull=True).update(
            status=Message.Status.QUEUED, claim_token=None, claimed_at=None
        )
        _health(alias, errors=F("errors") + 1, last_error_at=timezone.now(), last_error=str(exc)[:255])
        raise
    campaign_finish_if_done(campaign_id=campaign_id)
    return sent


def messages_record_results(*, gateway_alias: str, results: list[SendResult]) -> None:
    """Record a gateway's submit results (idempotent; any process may call it).

    Accepted: carrier id (normalised), parts, ``SENT``; buffered receipts for those ids are
    applied. Refused for good: the failure status with the reason and a refund of the message's
    credits (one ledger entry per call). Refused for now (``retryable``): back to ``QUEUED``.
    Only messages without a carrier id and not yet final are touched, so a replay is a no-op.
    """
    if not results:
        return
    now = timezone.now()
    accepted = [r for r in results if r.accepted and r.carrier_id]
    rejected = {int(r.ref): r for r in results if not r.accepted and not r.retryable}
    retry = [int(r.ref) for r in results if not r.accepted and r.retryable]
    with transaction.atomic():
        if accepted:
            _record_accepted(accepted, now)
        if retry:
            Message.objects.filter(id__in=retry, carrier_id__isnull=True, status=Message.Status.SUBMITTING).update(
                status=Message.Status.QUEUED, claim_token=None, claimed_at=None
            )
        if rejected:
            _reject_and_refund(rejected)
        _health(
            gateway_alias,
            submitted=F("submitted") + len(accepted),
            rejected=F("rejected") + len(rejected),
            last_submit_at=now,
        )
    if accepted:
        pending_receipts_apply(
            gateway_alias=gateway_alias, carrier_ids=[normalize_carrier_id(r.carrier_id) for r in accepted]
        )


def _record_accepted(accepted: list[SendResult], now) -> None:
    """Carrier ids and ``SENT`` for messages that have none yet: one UPDATE ... FROM unnest on
    PostgreSQL (``bulk_update``'s CASE WHEN costs more in Python than the query itself)."""
    ids = [int(r.ref) for r in accepted]
    carrier_ids = [normalize_carrier_id(r.carrier_id) for r in accepted]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE campaigns_message AS m
                   SET carrier_id = v.carrier_id, status = %s, submitted_at = %s, status_at = %s
                  FROM unnest(%s::bigint[], %s::varchar[]) AS v(id, carrier_id)
                 WHERE m.id = v.id AND m.carrier_id IS NULL AND m.status < %s
                """,
                [int(Message.Status.SENT), now, now, ids, carrier_ids, int(Message.Status.SENT)],
            )
        return
    rows = [
        Message(id=mid, carrier_id=cid, status=Message.Status.SENT, submitted_at=now, status_at=now)
        for mid, cid in zip(ids, carrier_ids, strict=True)
    ]
    Message.objects.filter(carrier_id__isnull=True, status__lt=Message.Status.SENT).bulk_update(
        rows, ["carrier_id", "status", "submitted_at", "status_at"]
    )


def _reject_and_refund(rejected: dict[int, SendResult], status: int = Message.Status.REJECTED) -> None:
    rows = list(
        Message.objects.select_for_update()
        .filter(id__in=rejected, carrier_id__isnull=True, status__lt=Message.Status.SENT)
        .values_list("id", "campaign_id", "account_id", "credits")
    )
    if not rows:
        return
    for error in {r.error for r in rejected.values()}:
        ids = [mid for mid, *_ in rows if rejected[mid].error == error]
        Message.objects.filter(id__in=ids).update(status=status, error=error[:255], status_at=timezone.now())
    _refund(rows)


def _refund(rows: list[tuple[int, int, int, Decimal]]) -> None:
    """One refund ledger entry per campaign for these (now failed) messages."""
    by_campaign: dict[tuple[int, int], list[tuple[int, Decimal]]] = {}
    for mid, campaign_id, account_id, credits in rows:
        by_campaign.setdefault((campaign_id, account_id), []).append((mid, credits))
    for (campaign_id, account_id), items in by_campaign.items():
        amount = sum((credits for _mid, credits in items), Decimal(0))
        if amount <= 0:
            continue
        digest = hashlib.sha1(",".join(str(mid) for mid, _c in sorted(items)).encode()).hexdigest()[:20]
        ledger_post(
            account_id=account_id,
            kind="refund",
            amount=amount,
            reference=f"campaign {campaign_id}: {len(items)} message(s) rejected",
            idempotency_key=f"campaign:{campaign_id}:refund:{digest}",
            campaign_id=campaign_id,
        )
        Campaign.objects.filter(pk=campaign_id).update(credits_debited=F("credits_debited") - amount)


def messages_fail_queued(*, campaign_id: int, first_id: int, last_id: int, reason: str) -> None:
    """Give up on an id range's queued messages (retries exhausted): mark failed and refund."""
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update()
            .filter(campaign_id=campaign_id, id__range=(first_id, last_id), status=Message.Status.QUEUED)
            .values_list("id", "campaign_id", "account_id", "credits")
        )
        Message.objects.filter(id__in=[r[0] for r in rows]).update(
            status=Message.Status.OPERATOR_TEMPORARY, error=reason[:255], status_at=timezone.now()
        )
        _refund(rows)
    campaign_finish_if_done(campaign_id=campaign_id)


def campaign_finish_if_done(*, campaign_id: int) -> None:
    """``sending -> done`` once no message of the campaign waits to be submitted."""
    waiting = Message.objects.filter(
        campaign_id=campaign_id, status__in=[Message.Status.QUEUED, Message.Status.SUBMITTING]
    ).exists()
    if not waiting:
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.DONE, completed_at=timezone.now()
        )


def messages_requeue_stale(*, now=None) -> list[tuple[int, int, int]]:
    """Housekeeping: claims older than the lease without a carrier id go back to ``QUEUED``.

    Returns ``(campaign_id, first_id, last_id)`` ranges for the caller to enqueue again.
    """
    now = now or timezone.now()
    with transaction.atomic():
        stale = Message.objects.filter(
            status=Message.Status.SUBMITTING, claimed_at__lt=now - submit_lease(), carrier_id__isnull=True
        )
        ids = list(stale.select_for_update(skip_locked=True).order_by("id").values_list("id", "campaign_id"))
        Message.objects.filter(id__in=[i for i, _c in ids], status=Message.Status.SUBMITTING).update(
            status=Message.Status.QUEUED, claim_token=None, claimed_at=None
        )
    ranges: dict[int, list[int]] = {}
    for mid, campaign_id in ids:
        ranges.setdefault(campaign_id, []).append(mid)
    out = []
    for campaign_id, mids in ranges.items():
        for chunk in _chunks(mids, BATCH_SIZE):
            out.append((campaign_id, chunk[0], chunk[-1]))
    return out


def campaigns_stuck_dispatching(*, now=None) -> list[int]:
    """Campaigns claimed by a dispatcher whose expansion never ran (worker lost before it)."""
    now = now or timezone.now()
    return list(
        Campaign.objects.filter(status=Campaign.Status.DISPATCHING, dispatched_at__lt=now - submit_lease())
        .annotate(first=Min("messages__id"))
        .filter(Q(first__isnull=True))
        .values_list("id", flat=True)
    )


def campaign_has_queued(*, campaign_id: int, first_id: int, last_id: int) -> bool:
    """Whether an id range still has queued messages (refused "for now" by the carrier)."""
    return Message.objects.filter(
        campaign_id=campaign_id, id__range=(first_id, last_id), status=Message.Status.QUEUED
    ).exists()


def campaign_error_contacts_delete(*, campaign_id: int, account_id: int) -> int:
    """Delete from the account's address book the contacts whose number failed in this campaign
    (SND-16's one click). Returns how many contacts were deleted; other accounts are untouched."""
    failed = Message.objects.filter(
        campaign_id=campaign_id, account_id=account_id, status__gte=Message.Status.INVALID
    ).values("phone")
    return contacts_delete_numbers(account_id=account_id, numbers=failed)
