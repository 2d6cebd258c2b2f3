"""The sending pipeline's services: dispatch, expand, claim, submit, record (DESIGN.md).

::

    beat ─ dispatch_due_campaigns ─> campaign_claim_due ─> expand_campaign task ─> campaign_expand
        (scheduled -> dispatching)        (reserve credits; write chunks; settle: debit, dispatching -> sending)
                                                              │ after each chunk's commit
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Count, F, Max, Model, Q, QuerySet, Sum
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext as _

from addressbook.models import Contact, Membership
from addressbook.services import blacklisted_numbers, contacts_delete_numbers
from billing.pricing import RateTable, UncoveredDestination
from billing.services import InsufficientCredits, credits_release, credits_reserve, ledger_post

from . import ratelimit
from .gateways import MessageKind, OutgoingSMS, SendResult, TemporaryGatewayError, get_gateway
from .models import Campaign, GatewayHealth, Message
from .receipts import normalize_carrier_id, pending_receipts_apply
from .text import GSM7_BASIC, FieldSpan, analyze, has_variables, parts_upper_bound, personalise, variables_in

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # messages per submit task
EXPAND_CHUNK = 5000  # recipients per blacklist query, bulk insert and commit
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
#
# A campaign of 1,000,000 recipients takes a minute to write; its first messages must leave within
# seconds (PERF.md). So the expansion works in three steps, each its own transaction:
#
# 1. reserve: hold the campaign's cost on the account (BYD-2). The cost is first *bounded* in a few
#    SQL aggregates (rows per region, the longest personalisation values); when the account cannot
#    cover the bound, the exact cost is computed by a full pricing pass. An account that cannot
#    cover the exact cost gets nothing sent and nothing debited: the campaign fails, the user is
#    emailed.
# 2. write: messages are written chunk by chunk, each chunk committed and its batches enqueued at
#    once, so workers send while the rest is written. A chunk beyond the reservation (recipients
#    added since step 1) extends it, or its messages become "insufficient credit".
# 3. settle: one ``send`` ledger entry for what the messages cost (messages the carrier refused
#    meanwhile are not charged), the reservation released, ``dispatching -> sending``.
#
# A lease on the campaign row makes one worker the expander; it is renewed with every chunk and
# checked in every transaction. A worker lost mid-way leaves the lease to expire; housekeeping
# then resumes the expansion, which skips the numbers already written.

EXPANSION_LEASE = timedelta(minutes=5)
_FIELD_COLUMNS = {"nom": "last_name", "prenom": "first_name", "email": "email", "societe": "company"}
# Values made only of GSM-7 basic characters cost one unit per character in either encoding.
_PLAIN_RE = "^[" + "".join(sorted(GSM7_BASIC - {"-"})) + "-]*$"

_RecipientRow = tuple[str, str, dict[str, str] | None]
_MessageRow = tuple[str, str, str, int, Decimal, int, str]  # phone, region, text, parts, credits, status, error


class _LeaseLost(Exception):
    """Another worker took over this campaign's expansion (ours outlived its lease)."""


@dataclass(frozen=True, slots=True)
class _Source:
    """Join rows reaching contacts: the contacts picked for a campaign, or a group's members."""

    model: type[Model]
    owner_column: str  # the join table's column naming the campaign or the group
    owner_id: int

    def rows(self) -> QuerySet:
        return self.model.objects.filter(**{self.owner_column: self.owner_id})

    def contacts_after(self, *, account_id: int, after: int, size: int) -> tuple[list[tuple], int | None]:
        """``(id, mobile, region, last_name, first_name, email, company)`` of the account's
        contacts among the next ``size`` join rows above contact id ``after``, by id, and the
        last contact id read (``None`` past the end).

        Two lookups whose plan needs no statistics (a group imported or a campaign saved just
        before the send has none, and PostgreSQL then guesses a few hundred rows): a range of
        the join table's unique index (owner, contact), written as a row comparison so that
        the index order is the only cheap plan, then those contacts by primary key alone."""
        table, owner = self.model._meta.db_table, self.owner_column
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {owner}, contact_id FROM {table} WHERE ({owner}, contact_id) > (%s, %s) "
                f"ORDER BY {owner}, contact_id LIMIT %s",
                [self.owner_id, after, size],
            )
            ids = [contact_id for owner_id, contact_id in cursor.fetchall() if owner_id == self.owner_id]
            if not ids:
                return [], None
            # The account is checked on the rows, not in the WHERE clause: without statistics,
            # PostgreSQL would read every contact of the account through the account's index.
            columns = ("id", "mobile", "region", "last_name", "first_name", "email", "company", "account_id")
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"SELECT {', '.join(columns)} FROM {Contact._meta.db_table} WHERE id = ANY(%s) ORDER BY id", [ids]
                )
                rows = cursor.fetchall()
            else:
                rows = list(Contact.objects.filter(id__in=ids).order_by("id").values_list(*columns))
        rows = [row[:-1] for row in rows if row[-1] == account_id]
        return rows, (ids[-1] if len(ids) == size else None)


def _contact_sources(campaign: Campaign) -> list[_Source]:
    """The contacts picked directly, then each group's members (a contact may be reached
    several times)."""
    group_ids = Campaign.groups.through.objects.filter(campaign_id=campaign.pk).values_list("group_id", flat=True)
    return [_Source(Campaign.contacts.through, "campaign_id", campaign.pk)] + [
        _Source(Membership, "group_id", group_id) for group_id in sorted(group_ids)
    ]


def _region_of(e164: str) -> str:
    """The pricing region of a valid E.164 number; a calling code of one region needs no parsing."""
    for length in (2, 3, 4):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(e164[1:length]))
        if regions:
            if len(regions) == 1 and regions[0] != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
                return regions[0]
            break
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _recipients(campaign: Campaign) -> Iterator[_RecipientRow]:
    """Every recipient of the campaign, contacts first (they personalise), duplicates included.

    Contacts are read in keyset chunks (the first one a single batch), each short queries that
    return at once: a cursor over the whole join would make the first chunk wait for a plan
    built for a million rows, and commits in between would materialise it."""
    for source in _contact_sources(campaign):
        after, size = 0, BATCH_SIZE
        while after is not None:
            rows, after = source.contacts_after(account_id=campaign.account_id, after=after, size=size)
            for _contact_id, mobile, region, last, first, email, company in rows:
                yield mobile, region, {"nom": last, "prenom": first, "email": email, "societe": company}
            size = EXPAND_CHUNK
    for number in campaign.numbers:
        yield number, _region_of(number), None


def _chunks(iterable, size, first_size=None):
    """Lists of ``size`` items (the first one of ``first_size`` when given)."""
    chunk, limit = [], first_size or size
    for item in iterable:
        chunk.append(item)
        if len(chunk) >= limit:
            yield chunk
            chunk, limit = [], size
    if chunk:
        yield chunk


@dataclass(slots=True)
class _Chunk:
    rows: list[_MessageRow]
    cost: Decimal
    duplicates: int
    blacklisted: int


def _priced_chunks(campaign: Campaign, rates: RateTable, *, written: frozenset[str] = frozenset()):
    """The campaign's messages, chunk by chunk: deduped by number, blacklisted numbers dropped,
    texts personalised, priced by destination (a destination without a rate gives an ``INVALID``
    message, not charged). Numbers in ``written`` (a resumed expansion) are skipped silently.
    The first chunk is one submit batch, so the first messages leave as early as possible."""
    personalised = has_variables(campaign.text)
    plain_parts = max(analyze(campaign.text).parts, 1)
    seen: set[str] = set()
    for recipients in _chunks(_recipients(campaign), EXPAND_CHUNK, first_size=BATCH_SIZE):
        fresh, duplicates = [], 0
        for row in recipients:
            if row[0] in seen:
                duplicates += 1
            else:
                seen.add(row[0])
                if row[0] not in written:
                    fresh.append(row)
        banned = blacklisted_numbers(account_id=campaign.account_id, numbers=[r[0] for r in fresh])
        rows, cost = [], Decimal(0)
        for phone, region, fields in fresh:
            if phone in banned:
                continue
            text = personalise(campaign.text, fields or {}) if personalised else campaign.text
            parts = max(analyze(text).parts, 1) if personalised else plain_parts
            try:
                credits, status, error = rates.price(region=region, parts=parts), Message.Status.QUEUED, ""
            except UncoveredDestination as exc:
                credits, status, error = Decimal(0), Message.Status.INVALID, str(exc)[:255]
            cost += credits
            rows.append((phone, region, text, parts, credits, status, error))
        yield _Chunk(rows, cost, duplicates, len(fresh) - len(rows))


_BOUND_JOIN_ROWS = 50_000


def _cost_bound(campaign: Campaign, rates: RateTable) -> Decimal:
    """An upper bound of the campaign's cost from a few aggregate queries, without writing a text.

    Contacts: a small audience (``_BOUND_JOIN_ROWS`` join rows or fewer) is aggregated through
    its join rows, every row counted (before dedupe and blacklist). A large one would cost a
    join over the whole audience, so it is bounded by the account's address book instead: at
    most min(join rows, contacts) messages, priced dearest region first within each region's
    contact count, with the longest personalisation values of the whole book. Typed numbers
    count the dearest region of their calling code. Personalised texts count the parts of
    their longest possible form (``parts_upper_bound``).
    """
    sources = _contact_sources(campaign)
    rows = sum(source.rows().count() for source in sources)
    if rows <= _BOUND_JOIN_ROWS:
        contacts = [(source.rows().filter(contact__account_id=campaign.account_id), "contact__") for source in sources]
    else:
        contacts = [(Contact.objects.filter(account_id=campaign.account_id), "")]
    per_region, parts = _contacts_parts_bound(campaign.text, contacts)
    capacity = min(rows, sum(per_region.values())) if rows > _BOUND_JOIN_ROWS else None
    total = Decimal(0)
    for region, n in sorted(per_region.items(), key=lambda item: -_price_or_zero(rates, item[0], parts)):
        if capacity is not None:
            n = min(n, capacity)
            capacity -= n
        total += _price_or_zero(rates, region, parts) * n
    typed_parts = max(analyze(personalise(campaign.text, {})).parts, 1)
    per_code: dict[int, int] = {}
    for prefix, n in Counter(number[:4] for number in set(campaign.numbers)).items():
        code = _calling_code(prefix)
        per_code[code] = per_code.get(code, 0) + n
    for code, n in per_code.items():
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
        dearest = max((_price_or_zero(rates, region, typed_parts) for region in regions), default=Decimal(0))
        total += dearest * n
    return total


def _contacts_parts_bound(text: str, querysets: list[tuple[QuerySet, str]]) -> tuple[dict[str, int], int]:
    """Rows per region of contact querysets (``prefix`` leads from a row to the contact's columns)
    and a bound of the parts of ``text`` personalised with their fields. Whether the values are
    plain GSM-7 (a regular expression over every row) is asked only when it changes the bound."""
    used = variables_in(text)
    per_region, lengths = _field_stats(querysets, used, plain=False)
    parts = parts_upper_bound(text, {name: FieldSpan(lengths[name], plain=False) for name in used})
    if parts > parts_upper_bound(text, {name: FieldSpan(lengths[name], plain=True) for name in used}):
        _per_region, odd = _field_stats(querysets, used, plain=True)
        parts = parts_upper_bound(text, {name: FieldSpan(lengths[name], plain=not odd[name]) for name in used})
    return per_region, parts


def _field_stats(
    querysets: list[tuple[QuerySet, str]], used: frozenset[str], *, plain: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per region, and per used field its longest value (or, with ``plain``, how many values
    hold a character outside the GSM-7 basic table)."""
    per_region: dict[str, int] = {}
    per_field = dict.fromkeys(used, 0)
    for queryset, prefix in querysets:
        aggregates = {"rows": Count("pk")}
        for name in used:
            column = f"{prefix}{_FIELD_COLUMNS[name]}"
            if plain:
                aggregates[name] = Count("pk", filter=~Q(**{f"{column}__regex": _PLAIN_RE}))
            else:
                aggregates[name] = Max(Length(column))
        for row in queryset.values(f"{prefix}region").annotate(**aggregates).order_by():
            region = row[f"{prefix}region"]
            per_region[region] = per_region.get(region, 0) + row["rows"]
            for name in used:
                per_field[name] = (
                    (per_field[name] + (row[name] or 0)) if plain else max(per_field[name], row[name] or 0)
                )
    return per_region, per_field


def _calling_code(e164: str) -> int:
    for length in (2, 3, 4):
        if int(e164[1:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return int(e164[1:length])
    return 0


def _price_or_zero(rates: RateTable, region: str, parts: int) -> Decimal:
    try:
        return rates.price(region=region, parts=parts)
    except UncoveredDestination:
        return Decimal(0)


def _fail(campaign_id: int, reason: str) -> None:
    """``dispatching -> failed`` with the reason; any reservation is released."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().only("id", "account_id", "credits_reserved").get(pk=campaign_id)
        credits_release(account_id=campaign.account_id, amount=campaign.credits_reserved)
        Campaign.objects.filter(pk=campaign_id).update(
            status=Campaign.Status.FAILED,
            failure_reason=reason,
            completed_at=timezone.now(),
            credits_reserved=0,
            expansion_lease_until=None,
        )


def _lease_claim(campaign_id: int) -> datetime | None:
    """Become the expander of a dispatching campaign whose lease is free or expired."""
    now = timezone.now()
    lease = now + EXPANSION_LEASE
    claimed = (
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.DISPATCHING)
        .filter(Q(expansion_lease_until__isnull=True) | Q(expansion_lease_until__lt=now))
        .update(expansion_lease_until=lease)
    )
    return lease if claimed else None


def _lease_renew(campaign_id: int, lease: datetime) -> datetime:
    """Extend our lease (inside the caller's transaction); ``_LeaseLost`` when it is not ours anymore.
    The lease's expiry doubles as the owner's token: only its holder knows the exact value."""
    renewed = timezone.now() + EXPANSION_LEASE
    if not Campaign.objects.filter(
        pk=campaign_id, status=Campaign.Status.DISPATCHING, expansion_lease_until=lease
    ).update(expansion_lease_until=renewed):
        raise _LeaseLost(campaign_id)
    return renewed


def campaign_expand(*, campaign_id: int, enqueue: Callable[[int, int], None]) -> bool:
    """Turn a dispatching campaign into messages, hold then debit its cost (SND-5, SND-11, BIL).

    Reserve, write chunk by chunk, settle (see above): ``enqueue(first_id, last_id)`` is called
    for each batch of ``BATCH_SIZE`` queued messages as soon as they are committed. Short balance:
    nothing is written or debited, the campaign fails with the reason and the user is emailed.
    Returns True when messages were queued. Does nothing for a campaign that is not
    ``dispatching`` or whose expansion another worker holds (a redelivered task); resumes one
    whose expander was lost.
    """
    lease = _lease_claim(campaign_id)
    if lease is None:
        return False
    try:
        return _expand(campaign_id, lease, enqueue)
    except _LeaseLost:
        logger.warning("Campaign %s: expansion lease lost to another worker; stopping this one.", campaign_id)
        return False


def _expand(campaign_id: int, lease: datetime, enqueue: Callable[[int, int], None]) -> bool:
    campaign = Campaign.objects.select_related("account").get(pk=campaign_id)
    alias = gateway_alias_for(campaign)
    rates = RateTable.load(campaign.kind)
    written = frozenset(Message.objects.filter(campaign_id=campaign_id).values_list("phone", flat=True))
    resumed = bool(written or campaign.credits_reserved)
    if resumed:
        # A lost expander's chunks stay; their counts are taken again from the start.
        Campaign.objects.filter(pk=campaign_id).update(recipients_count=0, duplicates_count=0, blacklisted_count=0)
        reserved = campaign.credits_reserved
        spent = Message.objects.filter(campaign_id=campaign_id).aggregate(s=Sum("credits"))["s"] or Decimal(0)
    else:
        if campaign.kind == Campaign.Kind.VOICE and not get_gateway(alias).supports_voice:
            _fail(campaign_id, _("The gateway %(alias)s cannot send voice messages.") % {"alias": alias})
            return False
        lease, reserved, available = _reserve(campaign, lease, rates)
        if available is not None:
            _fail(
                campaign_id,
                _("Insufficient credits: %(needed)s needed, %(balance)s available. Nothing was debited.")
                % {"needed": reserved, "balance": available},
            )
            _email_insufficient(campaign, reserved)
            return False
        spent = Decimal(0)
    enqueued_up_to = 0
    for chunk in _priced_chunks(campaign, rates, written=written):
        with transaction.atomic(durable=True):
            lease = _lease_renew(campaign_id, lease)
            if spent + chunk.cost > reserved:
                reserved += _extend_reservation(campaign, chunk, needed=spent + chunk.cost - reserved)
            _insert_messages(campaign, alias, chunk.rows)
            Campaign.objects.filter(pk=campaign_id).update(
                recipients_count=F("recipients_count") + len(chunk.rows),
                duplicates_count=F("duplicates_count") + chunk.duplicates,
                blacklisted_count=F("blacklisted_count") + chunk.blacklisted,
            )
        spent += chunk.cost
        enqueued_up_to = _enqueue_batches(campaign_id, after_id=enqueued_up_to, enqueue=enqueue, final=False)
    queued = _settle(campaign, lease)
    _enqueue_batches(campaign_id, after_id=enqueued_up_to, enqueue=enqueue, final=True)
    campaign_finish_if_done(campaign_id=campaign_id)
    return queued


def _reserve(campaign: Campaign, lease: datetime, rates: RateTable) -> tuple[datetime, Decimal, Decimal | None]:
    """Hold the campaign's cost: the bound when the account covers it, else the exact cost.
    Returns the renewed lease, the amount held (or needed), and the credits available when even
    the exact cost is not covered (``None`` once held)."""
    amount = _cost_bound(campaign, rates)
    for exact in (False, True):
        if exact:
            amount = Decimal(0)
            for chunk in _priced_chunks(campaign, rates):
                amount += chunk.cost
                with transaction.atomic():
                    lease = _lease_renew(campaign.pk, lease)
        try:
            with transaction.atomic(durable=True):
                renewed = _lease_renew(campaign.pk, lease)
                if amount > 0:
                    credits_reserve(account_id=campaign.account_id, amount=amount)
                    Campaign.objects.filter(pk=campaign.pk).update(credits_reserved=amount)
            return renewed, amount, None
        except InsufficientCredits as exc:
            available = exc.balance
    return lease, amount, available


def _extend_reservation(campaign: Campaign, chunk: _Chunk, *, needed: Decimal) -> Decimal:
    """Recipients added since the reservation: hold what they need, or what is left, and turn
    the messages that still do not fit into "insufficient credit" (not charged). Returns what
    was added to the hold. Runs in the chunk's transaction."""
    try:
        credits_reserve(account_id=campaign.account_id, amount=needed)
        added = needed
    except InsufficientCredits as exc:
        added = max(exc.balance, Decimal(0))
        if added:
            credits_reserve(account_id=campaign.account_id, amount=added)
    if added:
        Campaign.objects.filter(pk=campaign.pk).update(credits_reserved=F("credits_reserved") + added)
    over = needed - added
    for index in range(len(chunk.rows) - 1, -1, -1):
        if over <= 0:
            break
        phone, region, text, parts, credits, status, _error = chunk.rows[index]
        if credits:
            error = _("Insufficient credits")
            chunk.rows[index] = (phone, region, text, parts, Decimal(0), Message.Status.INSUFFICIENT_CREDIT, error)
            over -= credits
            chunk.cost -= credits
    return added


def _settle(campaign: Campaign, lease: datetime) -> bool:
    """Post the campaign's debit and release its hold: ``dispatching -> sending`` (or ``done``).

    The debit is what the messages cost, except messages the carrier refused for good before
    now: they were never charged, so they get no refund either (see ``_refund``)."""
    with transaction.atomic(durable=True):
        _lease_renew(campaign.pk, lease)
        locked = Campaign.objects.select_for_update().only("id", "credits_reserved").get(pk=campaign.pk)
        totals = Message.objects.filter(campaign_id=campaign.pk).aggregate(
            messages=Count("id"),
            debit=Sum("credits", filter=~Q(carrier_id__isnull=True, status__gte=Message.Status.INVALID)),
        )
        debit = totals["debit"] or Decimal(0)
        credits_release(account_id=campaign.account_id, amount=locked.credits_reserved)
        if debit > 0:
            ledger_post(
                account_id=campaign.account_id,
                kind="send",
                amount=-debit,
                reference=f"campaign {campaign.uuid}",
                idempotency_key=f"campaign:{campaign.pk}:debit",
                campaign_id=campaign.pk,
            )
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.SENDING if totals["messages"] else Campaign.Status.DONE,
            recipients_count=totals["messages"],
            credits_debited=debit,
            credits_reserved=0,
            expansion_lease_until=None,
            completed_at=None if totals["messages"] else timezone.now(),
        )
    return totals["messages"] > 0


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


def _queued_ids(campaign_id: int, after_id: int) -> Iterator[list[int]]:
    ids = (
        Message.objects.filter(campaign_id=campaign_id, status=Message.Status.QUEUED, id__gt=after_id)
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=10 * BATCH_SIZE)
    )
    return _chunks(ids, BATCH_SIZE)


def campaign_batches(*, campaign_id: int) -> Iterator[tuple[int, int]]:
    """Id ranges ``(first, last)`` of at most ``BATCH_SIZE`` queued messages, streamed by keyset."""
    for chunk in _queued_ids(campaign_id, 0):
        yield chunk[0], chunk[-1]


def _enqueue_batches(campaign_id: int, *, after_id: int, enqueue: Callable[[int, int], None], final: bool) -> int:
    """Enqueue the queued messages above ``after_id`` in batches of ``BATCH_SIZE``; a smaller
    last batch waits for the next chunk unless ``final``. Returns the last id enqueued. Enqueuing
    a range twice is harmless: a batch claims only what is still queued."""
    for chunk in _queued_ids(campaign_id, after_id):
        if len(chunk) < BATCH_SIZE and not final:
            break
        enqueue(chunk[0], chunk[-1])
        after_id = chunk[-1]
    return after_id


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
    """One refund ledger entry per campaign for these (now failed, never accepted) messages.

    A campaign still ``dispatching`` has not been debited yet: its settlement leaves these
    messages out of the debit, so nothing is refunded. The campaign row lock orders this
    decision with the settlement (which takes the same lock before summing)."""
    by_campaign: dict[tuple[int, int], list[tuple[int, Decimal]]] = {}
    for mid, campaign_id, account_id, credits in rows:
        by_campaign.setdefault((campaign_id, account_id), []).append((mid, credits))
    for (campaign_id, account_id), items in by_campaign.items():
        amount = sum((credits for _mid, credits in items), Decimal(0))
        if amount <= 0:
            continue
        status = Campaign.objects.select_for_update().values_list("status", flat=True).get(pk=campaign_id)
        if status == Campaign.Status.DISPATCHING:
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
    """Dispatching campaigns to expand again: their expander's lease expired (a lost worker), or
    no expansion started within a lease of the dispatcher's claim (a lost task)."""
    now = now or timezone.now()
    return list(
        Campaign.objects.filter(status=Campaign.Status.DISPATCHING)
        .filter(
            Q(expansion_lease_until__lt=now)
            | Q(expansion_lease_until__isnull=True, dispatched_at__lt=now - EXPANSION_LEASE)
        )
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
