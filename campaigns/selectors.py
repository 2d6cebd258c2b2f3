"""Reads of campaigns and templates scoped to the asking account: another account's object is a
404, decided here and nowhere else (ACC-10)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from addressbook.models import Contact, Group

from .models import Campaign, Message, Template

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


def campaign_status_counts(*, campaign: Campaign) -> list[tuple[str, int]]:
    """Messages per status for one campaign, one aggregate query (SND-16's counts)."""
    labels = dict(Message.Status.choices)
    rows = campaign.messages.values("status").annotate(n=Count("id")).order_by("status")
    return [(labels.get(row["status"], row["status"]), row["n"]) for row in rows]


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

    Contacts are keyset-paginated by -id (the index on (account, -id)) so a page is cheap at
    1,000,000 contacts. Returns ``(groups, contacts, next_before)``.
    """
    query = query.strip()
    groups = Group.objects.filter(account=user)
    contacts = Contact.objects.filter(account=user)
    if query:
        groups = groups.filter(name__icontains=query)
        digits = "".join(ch for ch in query if ch.isdigit())
        condition = Q(last_name__icontains=query) | Q(first_name__icontains=query) | Q(company__icontains=query)
        if digits and len(digits) >= 3:
            condition |= Q(mobile__contains=digits.lstrip("0"))
        contacts = contacts.filter(condition)
    if before is not None:
        contacts = contacts.filter(id__lt=before)
    group_list = list(groups.order_by("name")[:size]) if before is None else []
    rows = list(contacts.order_by("-id").only("id", "mobile", "first_name", "last_name")[: size + 1])
    next_before = rows[size - 1].id if len(rows) > size else None
    return group_list, rows[:size], next_before
