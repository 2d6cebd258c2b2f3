"""The composer's services (SND-1..SND-14): recipients resolution, the cost estimate, and the
writes on campaigns made by the customer (create, update, copy, delete, hide).

The composer never creates ``Message`` rows nor debits credits: the sending pipeline does, at
send time (SND-11). Saving a send means a ``scheduled`` campaign plus a nudge to the dispatcher.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import sending_refusal_reason
from addressbook.models import BlacklistEntry, Contact, Membership
from addressbook.phones import PhoneNormalizer, split_recipients
from addressbook.services import blacklisted_numbers
from billing.pricing import RateTable, UncoveredDestination

from . import scheduling
from .models import Campaign
from .text import SmsInfo, analyze, apply_euro_rule, has_variables, personalise

PREVIEW_SIZE = 3
_CHUNK = 2000
_EMPTY_FIELDS: dict[str, str] = {}

# SND-9: an opt-out means is a URL or a phone number / short code (5 digits or more).
_URL_RE = re.compile(r"(https?://|www\.)\S+|\b[a-z0-9-]+\.[a-z]{2,}(/\S*)?\b", re.IGNORECASE)
_PHONE_RE = re.compile(r"\+?\d(?:[\s.-]?\d){4,}")


class CampaignRefused(Exception):
    """A send the platform will not accept; ``str(exc)`` is a user-facing sentence."""


class CampaignLocked(CampaignRefused):
    """The campaign is no longer ``scheduled`` (the dispatcher claimed it, or it was deleted)."""

    @staticmethod
    def default_message() -> str:
        return _("This SMS is no longer scheduled (it is being sent or was deleted): it cannot change.")


def stop_mention() -> str:
    """The opt-out sentence appended on request (SND-9)."""
    return getattr(settings, "SMS_STOP_MENTION", "") or _("STOP: %(phone)s") % {"phone": settings.SUPPORT_PHONE}


def has_opt_out(text: str) -> bool:
    """Whether ``text`` gives an opt-out means: a URL or a phone number (SND-9)."""
    return bool(_URL_RE.search(text) or _PHONE_RE.search(text))


def needs_opt_out(*, kind: str, sender: str) -> bool:
    """A Pro SMS with a custom sender and a Voice SMS cannot be answered STOP (SND-9)."""
    return kind == Campaign.Kind.VOICE or bool(sender)


@dataclass(frozen=True, slots=True)
class ParsedNumbers:
    """Typed recipients: valid numbers in E.164 (first-seen order, with their region) and the
    entries that are not numbers, each with its reason (SND-4: never silently dropped)."""

    numbers: tuple[str, ...] = ()
    regions: dict[str, str] = field(default_factory=dict)
    invalid: tuple[tuple[str, str], ...] = ()
    duplicates: int = 0


def parse_numbers(*, raw: str, default_region: str, kind: str) -> ParsedNumbers:
    """Split and normalise an "Add recipient(s)" text (SND-2, SND-4); landlines only for voice."""
    normalizer = PhoneNormalizer(default_region=default_region, allow_landline=kind == Campaign.Kind.VOICE)
    regions: dict[str, str] = {}
    invalid: list[tuple[str, str]] = []
    duplicates = 0
    for entry in split_recipients(raw or ""):
        result = normalizer.normalize(entry)
        if not result.valid:
            invalid.append((entry, result.error or _("Not a valid number.")))
        elif result.e164 in regions:
            duplicates += 1
        else:
            regions[result.e164] = result.region or ""
    return ParsedNumbers(tuple(regions), regions, tuple(invalid), duplicates)


@dataclass(frozen=True, slots=True)
class Draft:
    """What the New SMS form asks for, validated for shape (forms.CampaignForm.draft())."""

    kind: str
    text: str
    sender: str = ""
    is_marketing: bool = False
    append_stop: bool = False
    numbers: ParsedNumbers = ParsedNumbers()
    contact_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    send_at: dt.datetime | None = None  # None: now

    def final_text(self) -> tuple[str, bool]:
        """The text as it will be stored: STOP mention appended on request, then the € rule
        (SND-10). Returns ``(text, euro_replaced)``."""
        text = self.text.strip()
        if self.append_stop and not has_opt_out(text):
            text = f"{text}\n{stop_mention()}"
        return apply_euro_rule(text)


@dataclass(slots=True)
class Estimate:
    """The recipients after dedupe and blacklist, and what sending would cost (SND-1, SND-5)."""

    recipients: int = 0
    duplicates: int = 0
    blacklisted: int = 0
    credits: Decimal = Decimal("0")
    longest: SmsInfo | None = None
    uncovered: set[str] = field(default_factory=set)
    preview: list[tuple[str, str]] = field(default_factory=list)
    partial: bool = False  # the live summary stopped counting personalised texts early


def _contacts(*, account_id: int, contact_ids: Sequence[int], group_ids: Sequence[int]) -> QuerySet[Contact] | None:
    """The account's contacts picked one by one or through a group, each contact once."""
    condition = Q()
    if contact_ids:
        condition |= Q(pk__in=list(contact_ids))
    if group_ids:
        members = Membership.objects.filter(group_id__in=list(group_ids), group__account_id=account_id)
        condition |= Q(pk__in=members.values("contact_id"))
    if not condition:
        return None
    return Contact.objects.filter(condition, account_id=account_id)


def _blacklisted(account_id: int) -> Exists:
    return Exists(BlacklistEntry.objects.filter(account_id=account_id, number=OuterRef("mobile")))


def recipients_estimate(
    *,
    account_id: int,
    kind: str,
    text: str,
    numbers: ParsedNumbers,
    contact_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
    preview_size: int = PREVIEW_SIZE,
    cache_seconds: int = 0,
    personalised_limit: int | None = None,
) -> Estimate:
    """Count distinct, non-blacklisted recipients and price each personalised text with the one
    pricing function (billing.pricing) and the one counter (campaigns.text.analyze).

    Distinct numbers count once: a number typed twice, or shared by two contacts, is a
    duplicate; a contact reached both directly and through a group is simply one recipient.
    Without variables the text is the same for everyone and the contacts are counted per region
    in SQL (a handful of queries at 1,000,000 contacts); with variables each contact's text is
    counted, streaming ``values_list`` rows in chunks of 2,000. Uncovered destinations are
    collected in ``uncovered`` instead of raising, so the form can list them all.

    ``cache_seconds`` (the live summary only, never a send) reuses the per-region counts of the
    same selection for that long, so typing re-prices without re-scanning a big group.
    ``personalised_limit`` (the live summary only) stops the per-contact pass after that many
    contacts and sets ``partial``: the figures are then lower bounds, checked in full at send.
    """
    rates = RateTable.load(kind)
    contacts = _contacts(account_id=account_id, contact_ids=contact_ids, group_ids=group_ids)
    typed_blocked = blacklisted_numbers(account_id=account_id, numbers=numbers.numbers) if numbers.numbers else set()
    estimate = Estimate(duplicates=numbers.duplicates, blacklisted=len(typed_blocked))

    def add(number: str, region: str, info: SmsInfo, count: int = 1) -> None:
        estimate.recipients += count
        if estimate.longest is None or (info.parts, info.units) > (estimate.longest.parts, estimate.longest.units):
            estimate.longest = info
        try:
            estimate.credits += rates.price(region=region, parts=info.parts) * count
        except UncoveredDestination:
            estimate.uncovered.add(region or "?")
        if number and len(estimate.preview) < preview_size:
            estimate.preview.append((number, info.text))

    typed_info = analyze(personalise(text, _EMPTY_FIELDS))
    for number in numbers.numbers:
        if number not in typed_blocked:
            add(number, numbers.regions[number], typed_info)
    if contacts is not None:
        if has_variables(text):
            _add_personalised(
                estimate,
                add,
                contacts,
                account_id=account_id,
                text=text,
                typed=set(numbers.numbers),
                limit=personalised_limit,
            )
        else:
            key = (
                "composer:counts:"
                + hashlib.sha256(
                    repr((account_id, sorted(contact_ids), sorted(group_ids), sorted(numbers.numbers))).encode()
                ).hexdigest()
            )
            counts = cache.get(key) if cache_seconds else None
            if counts is None:
                counts = _uniform_counts(contacts=contacts, account_id=account_id, typed=numbers.numbers)
                if cache_seconds:
                    cache.set(key, counts, cache_seconds)
            _add_uniform(estimate, add, counts, info=typed_info)
    if estimate.longest is None:
        estimate.longest = typed_info
    return estimate


def _uniform_counts(*, contacts: QuerySet, account_id: int, typed: Sequence[str]) -> dict:
    """Counts that do not depend on the text: typed numbers also held by contacts, the first
    allowed numbers (preview) and, per region, rows / distinct numbers / blacklisted numbers.
    One scan of the selection (a number has one region, so per-region distinct counts add up)."""
    already = list(contacts.filter(mobile__in=typed).values_list("mobile", flat=True)) if typed else []
    remaining = contacts.exclude(mobile__in=set(already)) if already else contacts
    remaining = remaining.annotate(blocked=_blacklisted(account_id)).order_by()
    preview = list(remaining.filter(blocked=False).values_list("mobile", flat=True)[:PREVIEW_SIZE])
    per_region = list(
        remaining.values("region").annotate(
            rows=Count("id"),
            numbers=Count("mobile", distinct=True),
            blocked_numbers=Count("mobile", distinct=True, filter=Q(blocked=True)),
        )
    )
    return {"already": len(already), "preview": preview, "per_region": per_region}


def _add_uniform(estimate: Estimate, add, counts: dict, *, info: SmsInfo) -> None:
    """Same text for everyone: price the per-region counts."""
    estimate.duplicates += counts["already"]
    for number in counts["preview"][: max(PREVIEW_SIZE - len(estimate.preview), 0)]:
        estimate.preview.append((number, info.text))
    for row in counts["per_region"]:
        estimate.duplicates += row["rows"] - row["numbers"]
        estimate.blacklisted += row["blocked_numbers"]
        if allowed := row["numbers"] - row["blocked_numbers"]:
            add("", row["region"], info, allowed)


def _add_personalised(
    estimate: Estimate, add, contacts: QuerySet, *, account_id: int, text: str, typed, limit: int | None
) -> None:
    """One text per contact: stream the fields and count each text; the first contact holding
    a number wins (as the pipeline's one message per number)."""
    seen = set(typed)
    rows = contacts.annotate(blocked=_blacklisted(account_id)).values_list(
        "mobile", "region", "last_name", "first_name", "email", "company", "blocked"
    )
    if limit is not None:
        rows = rows.order_by()[: limit + 1]
    for index, (mobile, region, last_name, first_name, email, company, blocked) in enumerate(
        rows.iterator(chunk_size=_CHUNK)
    ):
        if limit is not None and index == limit:
            estimate.partial = True
            break
        if mobile in seen:
            estimate.duplicates += 1
            continue
        seen.add(mobile)
        if blocked:
            estimate.blacklisted += 1
            continue
        fields = {"nom": last_name, "prenom": first_name, "email": email, "societe": company}
        add(mobile, region, analyze(personalise(text, fields)))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A draft accepted for sending: the stored text, the send moment, the estimate, notices."""

    text: str
    scheduled_at: dt.datetime
    estimate: Estimate
    euro_replaced: bool
    deferred_from: dt.datetime | None


def campaign_prepare(*, user, draft: Draft, now: dt.datetime | None = None, new_schedule: bool = True) -> Prepared:
    """Check a draft against every sending rule and compute what saving it would mean.

    Raises :class:`CampaignRefused` with a user-facing reason when the account cannot send, the
    date is past (for a new schedule), a marketing text without opt-out means is sent from a
    custom sender or as voice (SND-9), there are no recipients, a destination is not covered or
    the balance cannot pay the estimate (SND-1). Reads only: nothing is saved.
    """
    now = now or timezone.now()
    reason = sending_refusal_reason(user)
    if reason:
        raise CampaignRefused(reason)
    if draft.send_at is not None and new_schedule and draft.send_at < now:
        raise CampaignRefused(_("The send date is in the past: choose a later date, or send now."))
    text, euro_replaced = draft.final_text()
    if not text:
        raise CampaignRefused(_("The text is empty."))
    if draft.is_marketing and needs_opt_out(kind=draft.kind, sender=draft.sender) and not has_opt_out(text):
        raise CampaignRefused(
            _(
                "A marketing message sent with a custom sender or as Voice SMS must give a way to opt out "
                "(a phone number or a URL): add one, or tick “Append the STOP mention”."
            )
        )
    estimate = recipients_estimate(
        account_id=user.pk,
        kind=draft.kind,
        text=text,
        numbers=draft.numbers,
        contact_ids=draft.contact_ids,
        group_ids=draft.group_ids,
    )
    if estimate.recipients == 0:
        raise CampaignRefused(_("No recipient left to send to (after removing duplicates and blacklisted numbers)."))
    if estimate.uncovered:
        raise CampaignRefused(
            _("We do not send to these destinations: %(regions)s. Remove those numbers.")
            % {"regions": ", ".join(sorted(estimate.uncovered))}
        )
    if estimate.credits > user.credit_balance:
        raise CampaignRefused(
            _("This send costs %(cost)s credits but your balance is %(balance)s: buy credits or remove recipients.")
            % {"cost": _credits(estimate.credits), "balance": _credits(user.credit_balance)}
        )
    scheduled_at = max(draft.send_at or now, now) if new_schedule else (draft.send_at or now)
    deferred_from = None
    if draft.is_marketing:
        allowed = scheduling.next_commercial_time(scheduled_at)
        if allowed != scheduled_at:
            deferred_from, scheduled_at = scheduled_at, allowed
    return Prepared(text, scheduled_at, estimate, euro_replaced, deferred_from)


def _credits(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _nudge_dispatcher() -> None:
    from .tasks import dispatch_due_campaigns

    dispatch_due_campaigns.delay_on_commit()


def _save_scheduled(campaign: Campaign, draft: Draft, prepared: Prepared) -> None:
    """Write the prepared draft onto ``campaign`` (new or locked), save it with its recipients and
    nudge the dispatcher after commit."""
    campaign.kind = draft.kind
    campaign.text = prepared.text
    campaign.sender = draft.sender if draft.kind == Campaign.Kind.SMS else ""
    campaign.is_marketing = draft.is_marketing
    campaign.numbers = list(draft.numbers.numbers)
    campaign.scheduled_at = prepared.scheduled_at
    campaign.save()
    campaign.contacts.set(draft.contact_ids)
    campaign.groups.set(draft.group_ids)
    _nudge_dispatcher()


@transaction.atomic(durable=True)
def campaign_create(*, user, draft: Draft, now: dt.datetime | None = None) -> tuple[Campaign, Prepared]:
    """Save a send as a ``scheduled`` campaign (now, the typed date, or the SND-18 deferred
    moment) and nudge the dispatcher after commit. Raises :class:`CampaignRefused`; nothing is
    saved then."""
    prepared = campaign_prepare(user=user, draft=draft, now=now)
    campaign = Campaign(account=user, status=Campaign.Status.SCHEDULED)
    _save_scheduled(campaign, draft, prepared)
    return campaign, prepared


def _lock_scheduled(*, user, campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_for_update().filter(account=user, pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SCHEDULED:
        raise CampaignLocked(CampaignLocked.default_message())
    return campaign


@transaction.atomic(durable=True)
def campaign_update(
    *, user, campaign: Campaign, draft: Draft, now: dt.datetime | None = None
) -> tuple[Campaign, Prepared]:
    """Edit a scheduled campaign's text, recipients, type and date (SND-12). Refused with
    :class:`CampaignLocked` once the dispatcher has claimed it (row lock on status=scheduled).
    A past date is refused only when the user changed the date."""
    now = now or timezone.now()
    locked = _lock_scheduled(user=user, campaign_id=campaign.pk)
    unchanged_date = draft.send_at is not None and draft.send_at == locked.scheduled_at
    prepared = campaign_prepare(user=user, draft=draft, now=now, new_schedule=not unchanged_date)
    _save_scheduled(locked, draft, prepared)
    return locked, prepared


@transaction.atomic(durable=True)
def campaign_copy(*, user, campaign: Campaign, now: dt.datetime | None = None) -> tuple[Campaign, Prepared]:
    """A new scheduled campaign with the same content, recipients and date; sent at once when
    that date is past (SND-12). The original is untouched. Checked like a new send."""
    now = now or timezone.now()
    draft = Draft(
        kind=campaign.kind,
        text=campaign.text,
        sender=campaign.sender,
        is_marketing=campaign.is_marketing,
        numbers=ParsedNumbers(tuple(campaign.numbers), _regions_of(campaign.numbers)),
        contact_ids=tuple(campaign.contacts.values_list("id", flat=True)),
        group_ids=tuple(campaign.groups.values_list("id", flat=True)),
        send_at=max(campaign.scheduled_at or now, now),
    )
    prepared = campaign_prepare(user=user, draft=draft, now=now)
    copy = Campaign(account=user, status=Campaign.Status.SCHEDULED, copied_from=campaign, gateway=campaign.gateway)
    _save_scheduled(copy, draft, prepared)
    return copy, prepared


def _regions_of(numbers: Iterable[str]) -> dict[str, str]:
    normalizer = PhoneNormalizer(allow_landline=True)
    return {number: normalizer.normalize(number).region or "" for number in numbers}


@transaction.atomic(durable=True)
def campaign_delete(*, user, campaign: Campaign) -> Campaign:
    """Cancel a scheduled campaign: it will never be sent (SND-12). Refused with
    :class:`CampaignLocked` when the dispatcher already claimed it."""
    locked = _lock_scheduled(user=user, campaign_id=campaign.pk)
    locked.status = Campaign.Status.CANCELLED
    locked.save(update_fields=["status", "updated_at"])
    return locked


def campaign_hide(*, user, campaign: Campaign) -> None:
    """Remove a sent campaign from "Sent SMS" (SND-13): a sent SMS cannot be recalled; its
    messages and accounting stay. Idempotent."""
    Campaign.objects.filter(account=user, pk=campaign.pk, hidden_at__isnull=True).exclude(
        status__in=[Campaign.Status.SCHEDULED, Campaign.Status.DRAFT, Campaign.Status.CANCELLED]
    ).update(hidden_at=timezone.now())
