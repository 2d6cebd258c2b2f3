"""Account-scoped reads for the address book pages. Every lookup by id goes through ``*_get``,
which 404s for another account's objects, so views never query models directly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

import phonenumbers
from django.db.models import Count, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Upper
from django.shortcuts import get_object_or_404

from .models import BlacklistEntry, Contact, ContactImport, Group

COUNT_CAP = 10_000
PAGE_SIZE = 50

_NUMBER_QUERY_RE = re.compile(r"^[+\d][\d\s.\-/()]*$")


def contact_get(*, account, contact_id: int) -> Contact:
    return get_object_or_404(Contact, account=account, id=contact_id)


def group_get(*, account, group_id: int) -> Group:
    return get_object_or_404(Group, account=account, id=group_id)


def contact_import_get(*, account, uuid) -> ContactImport:
    return get_object_or_404(ContactImport.objects.select_related("group"), account=account, uuid=uuid)


def blacklist_entry_get(*, account, entry_id: int) -> BlacklistEntry:
    return get_object_or_404(BlacklistEntry, account=account, id=entry_id)


def number_prefix(query: str, *, default_region: str) -> str | None:
    """A number search as an E.164 prefix: ``06 12`` -> ``+33612``, ``0033 6`` -> ``+336``,
    ``+44 7`` -> ``+447``; ``None`` when the query is not a number."""
    if not _NUMBER_QUERY_RE.match(query.strip()) or sum(ch.isdigit() for ch in query) < 2:
        return None
    digits = re.sub(r"\D", "", query)
    if query.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        code = phonenumbers.country_code_for_region(default_region or "FR")
        return f"+{code}{digits[1:]}"
    return "+" + digits


def contacts_search(*, account, query: str = "", group_id: int | None = None) -> QuerySet[Contact]:
    """The account's contacts matching ``query`` (a number prefix, or a piece of a name, company
    or email), newest first."""
    qs = Contact.objects.filter(account=account)
    query = query.strip()
    if query:
        prefix = number_prefix(query, default_region=account.default_region)
        if prefix:
            qs = qs.filter(mobile__startswith=prefix)
        else:
            # UPPER in SQL on both sides: the same case mapping as the generated column whatever the locale.
            qs = qs.filter(search__contains=Upper(Value(query)))
    if group_id:
        qs = qs.filter(membership__group_id=group_id)
    return qs.order_by("-id")


@dataclass
class KeysetPage:
    """One page of a keyset-paginated list; matches includes/pagination.html."""

    object_list: list
    count_label: str
    has_next: bool = False
    has_previous: bool = False
    next_query: str = ""
    previous_query: str = ""
    params: dict = field(default_factory=dict)


def _capped_count(qs: QuerySet) -> str:
    # Counting stops at COUNT_CAP + 1 rows: exact for small books, "10,000+" beyond, never a full scan.
    n = qs.order_by().values("id")[: COUNT_CAP + 1].count()
    return f"{COUNT_CAP:,}+" if n > COUNT_CAP else f"{n:,}"


def keyset_page(qs: QuerySet, *, after: int | None, before: int | None, params: dict, per_page: int = PAGE_SIZE):
    """A page of ``qs`` (ordered by -id) after/before an id: two queries whatever the depth, no OFFSET."""
    if before:
        rows = list(qs.filter(id__gt=before).order_by("id")[: per_page + 1])
        has_more = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        has_next, has_previous = True, has_more
    else:
        if after:
            qs = qs.filter(id__lt=after)
        rows = list(qs[: per_page + 1])
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        has_previous = bool(after)
    page = KeysetPage(object_list=rows, count_label="", has_next=has_next and bool(rows), has_previous=has_previous)
    if rows:
        page.next_query = urlencode({**params, "after": rows[-1].id})
        page.previous_query = urlencode({**params, "before": rows[0].id})
    return page


def contact_page(
    *, account, query: str = "", group_id: int | None = None, after: int | None = None, before: int | None = None
) -> KeysetPage:
    """The contact list page: at most 2 queries (rows with blacklist flags, capped count)."""
    qs = contacts_search(account=account, query=query, group_id=group_id)
    params = {k: v for k, v in {"q": query, "group": group_id or ""}.items() if v}
    blacklisted = BlacklistEntry.objects.filter(account_id=OuterRef("account_id"), number=OuterRef("mobile"))
    page = keyset_page(qs.annotate(blacklisted=Exists(blacklisted)), after=after, before=before, params=params)
    page.count_label = _capped_count(qs)
    return page


def groups_with_sizes(*, account) -> list[Group]:
    return list(Group.objects.filter(account=account).annotate(size=Count("membership")).order_by("name"))


def duplicate_numbers(*, account, limit: int = 200) -> list[dict]:
    """Numbers present more than once in the account, with how many times (uses the (account, mobile) index)."""
    return list(
        Contact.objects.filter(account=account)
        .values("mobile")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("-n", "mobile")[:limit]
    )


def contacts_with_numbers(*, account, numbers: list[str]) -> list[Contact]:
    return list(
        Contact.objects.filter(account=account, mobile__in=numbers).prefetch_related("groups").order_by("mobile", "id")
    )


def blacklist_page(*, account, query: str = "", after: int | None = None, before: int | None = None) -> KeysetPage:
    qs = BlacklistEntry.objects.filter(account=account).order_by("-id")
    prefix = number_prefix(query, default_region=account.default_region) if query else None
    if prefix:
        qs = qs.filter(number__startswith=prefix)
    page = keyset_page(qs, after=after, before=before, params={"q": query} if query else {})
    page.count_label = _capped_count(qs)
    return page


def contacts_export_rows(*, account):
    """Every contact of the account as export rows, streamed in chunks."""
    return (
        Contact.objects.filter(account=account)
        .order_by("id")
        .values_list("last_name", "first_name", "mobile", "email", "company", "region")
        .iterator(chunk_size=5000)
    )
