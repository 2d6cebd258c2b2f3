"""Reads of campaigns and templates scoped to the asking account: another account's object is a
404, decided here and nowhere else (ACC-10)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from addressbook.models import Contact, Group
from addressbook.selectors import name_search_ids

from .models import Campaign, Message, MessageCount, Template

SENT_STATUSES = (Campaign.Status.DISPATCHING, Campaign.Status.SENDING, Campaign.Status.DONE, Campaign.Status.FAILED)
PAGE_SIZE = 25
PICKER_SIZE = 15
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit minus the header row


def campaign_get_for_user(*, user, campaign_uuid) -> Campaign:
    return get_object_or_404(Campaign, account=user, uuid=campaign_uuid)


def template_get_for_user(*, user, template_id: int) -> Template:
    return get_object_or_404(Template, account=user, pk=template_id)


def template_list(*, user) -> QuerySet[Template]:
    return Template.objects.filter(account=user).order_by("name", "id")


@dataclass
class KeysetPage:
    """One page of a list ordered by -id; ``next_query`` / ``previous_query`` feed
    includes/pagination.html."""

    items: list
    has_next: bool
    has_previous: bool
    next_query: str = ""
    previous_query: str = ""


def _keyset(queryset: QuerySet, *, before: int | None, after: int | None, size: int, extra: dict) -> KeysetPage:
    if after is not None:
        # Going back: the rows just above ``after``, fetched ascending then flipped.
        rows = list(queryset.filter(id__gt=after).order_by("id")[: size + 1])
        has_previous = len(rows) > size
        items = list(reversed(rows[:size]))
        has_next = True
    else:
        if before is not None:
            queryset = queryset.filter(id__lt=before)
        rows = list(queryset.order_by("-id")[: size + 1])
        has_next = len(rows) > size
        items = rows[:size]
        has_previous = before is not None
    page = KeysetPage(items, has_next and bool(items), has_previous and bool(items))
    if items:
        page.next_query = urlencode({**extra, "before": items[-1].id})
        page.previous_query = urlencode({**extra, "after": items[0].id})
    return page


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def campaign_page(*, user, scheduled: bool, params, size: int = PAGE_SIZE) -> KeysetPage:
    """ "Scheduled SMS" or "Sent SMS" (hidden ones left out), newest first, keyset on id: two
    queries whatever the page."""
    queryset = Campaign.objects.filter(account=user)
    if scheduled:
        queryset = queryset.filter(status=Campaign.Status.SCHEDULED)
    else:
        queryset = queryset.filter(status__in=SENT_STATUSES, hidden_at__isnull=True)
    queryset = queryset.only(
        "id", "uuid", "kind", "text", "sender", "status", "scheduled_at", "recipients_count", "credits_debited"
    )
    return _keyset(queryset, before=_int(params.get("before")), after=_int(params.get("after")), size=size, extra={})


@dataclass(frozen=True)
class StatusCount:
    status: int
    label: str
    count: int


@dataclass(frozen=True)
class StatusCounts:
    """A campaign's messages per status (statuses with none left out), in status order."""

    rows: list[StatusCount]

    @property
    def total(self) -> int:
        return sum(row.count for row in self.rows)

    @property
    def final(self) -> int:
        """Messages whose status will not change again: received or failed."""
        return sum(row.count for row in self.rows if row.status >= Message.Status.RECEIVED)

    @property
    def errors(self) -> int:
        return sum(row.count for row in self.rows if row.status >= Message.Status.INVALID)

    @property
    def waiting(self) -> bool:
        """Some message has no final status yet (queued, sending, or waiting for its receipt)."""
        return any(row.status < Message.Status.RECEIVED for row in self.rows)


def campaign_status_counts(*, campaign: Campaign) -> StatusCounts:
    """Messages per status for one campaign (SND-16): exact, one query on ``MessageCount`` (a
    few rows per status kept by triggers), never a scan of the campaign's messages."""
    labels = dict(Message.Status.choices)
    sums = (
        MessageCount.objects.filter(campaign=campaign)
        .values("status")
        .annotate(n=Sum("count"))
        .order_by("status")
        .values_list("status", "n")
    )
    return StatusCounts([StatusCount(status, str(labels.get(status, status)), n) for status, n in sums if n])


# A page of one campaign's messages in some statuses, newest first, on PostgreSQL: for each
# status, the newest ``limit`` rows below ``below`` from the (campaign, status, id) index, then
# the newest ``limit`` of those. ``status BETWEEN s AND s`` ordered by (status, id) selects the
# rows of ``status = s`` in an order only that index gives: with ``status = s`` the planner may
# walk the primary key backwards instead, through every newer message of the other campaigns
# (it assumes a campaign's rows are spread evenly over all ids), ~100 ms at 240k newer rows.
_MESSAGES_PAGE_POSTGRESQL = """
SELECT m.id, m.phone, m.status, m.error, m.status_at, m.parts
  FROM unnest(%(statuses)s::smallint[]) AS s(status)
 CROSS JOIN LATERAL (
       SELECT id, phone, status, error, status_at, parts
         FROM campaigns_message
        WHERE campaign_id = %(campaign)s AND status BETWEEN s.status AND s.status AND id < %(below)s
        ORDER BY status DESC, id DESC
        LIMIT %(limit)s
       ) AS m
 ORDER BY m.id DESC
 LIMIT %(limit)s
"""
_NO_ID_ABOVE = 2**63 - 1


def campaign_messages_page(
    *, campaign: Campaign, statuses: Sequence[int], below: int | None = None, size: int
) -> tuple[list[Message], bool]:
    """The campaign's messages in ``statuses`` with an id below ``below``, newest first: at most
    ``size`` rows and whether more follow. One query whatever the campaign's size, the filter or
    the depth: on PostgreSQL at most ``size + 1`` index entries per status, never a sort of the
    campaign's messages nor a walk past other campaigns' newer rows.
    """
    if not statuses:
        return [], False
    if connection.vendor == "postgresql":
        params = {
            "statuses": list(statuses),
            "campaign": campaign.pk,
            "below": _NO_ID_ABOVE if below is None else below,
            "limit": size + 1,
        }
        rows = list(Message.objects.raw(_MESSAGES_PAGE_POSTGRESQL, params))
    else:
        queryset = Message.objects.filter(campaign=campaign, status__in=statuses)
        if below is not None:
            queryset = queryset.filter(id__lt=below)
        fields = ("id", "phone", "status", "error", "status_at", "parts")
        rows = list(queryset.only(*fields).order_by("-id")[: size + 1])
    return rows[:size], len(rows) > size


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    counts: StatusCounts
    rows: list[Message]
    has_next: bool


def campaign_report(
    *, user, campaign_uuid, statuses: Sequence[int], below: int | None = None, size: int
) -> CampaignReport:
    """The receipt report of one of ``user``'s campaigns (SND-16): its counts per status and a
    page of its messages in ``statuses``, newest first. Three queries whatever the campaign's
    size, the filter or the depth (campaign, counts, rows).

    Rows are read only for the statuses the counts have, so the page agrees with the counts
    shown beside it (a status reached in between appears at the next refresh).
    """
    campaign = campaign_get_for_user(user=user, campaign_uuid=campaign_uuid)
    counts = campaign_status_counts(campaign=campaign)
    present = {row.status for row in counts.rows}
    rows, has_next = campaign_messages_page(
        campaign=campaign, statuses=[s for s in statuses if s in present], below=below, size=size
    )
    return CampaignReport(campaign, counts, rows, has_next)


def sent_messages_rows(*, user, limit: int | None = None) -> Iterator[tuple]:
    """Export rows of "Sent SMS" (SND-17): one per message of a visible sent campaign, newest
    campaign first, streamed from the database."""
    labels = dict(Message.Status.choices)
    queryset = (
        Message.objects.filter(account=user, campaign__status__in=SENT_STATUSES, campaign__hidden_at__isnull=True)
        .order_by("-campaign_id", "id")
        .values_list("campaign__scheduled_at", "phone", "text", "parts", "credits", "status")
    )
    if limit is not None:
        queryset = queryset[:limit]
    for sent_at, phone, text, parts, credits, status in queryset.iterator(chunk_size=2000):
        yield sent_at, phone, text, parts, credits, str(labels.get(status, status))


def picker_search(*, user, query: str, before: int | None, size: int = PICKER_SIZE) -> tuple[list, list, int | None]:
    """The address-book picker: groups and contacts of the account matching ``query``.

    Contacts match by name, company or email as in the address book (each word of the query
    starts a word: ``addressbook.selectors.name_search_ids``, read through the search index), or
    by a piece of their number. They are keyset-paginated by -id (the index on (account, -id)) so
    a page is cheap at 1,000,000 contacts. Returns ``(groups, contacts, next_before)``.
    """
    query = query.strip()
    groups = Group.objects.filter(account=user)
    contacts = Contact.objects.filter(account=user)
    if query:
        groups = groups.filter(name__icontains=query)
        digits = "".join(ch for ch in query if ch.isdigit())
        matches = name_search_ids(account=user, query=query)
        condition = Q(id__in=matches) if matches is not None else Q(pk__in=[])
        if digits and len(digits) >= 3:
            condition |= Q(mobile__contains=digits.lstrip("0"))
        contacts = contacts.filter(condition)
    if before is not None:
        contacts = contacts.filter(id__lt=before)
    group_list = list(groups.order_by("name")[:size]) if before is None else []
    rows = list(contacts.order_by("-id").only("id", "mobile", "first_name", "last_name")[: size + 1])
    next_before = rows[size - 1].id if len(rows) > size else None
    return group_list, rows[:size], next_before
