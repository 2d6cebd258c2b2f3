"""Account-scoped reads for the address book pages. Every lookup by id goes through ``*_get``,
which 404s for another account's objects, so views never query models directly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

import phonenumbers
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import Count, Exists, F, Func, OuterRef, QuerySet, TextField
from django.shortcuts import get_object_or_404

from .models import BlacklistEntry, Contact, ContactImport, ContactSearch, Group, Membership
from .search import query_words

COUNT_CAP = 10_000
# A name search counts its matches up to here ("1,000+"): past it, reading every match costs more
# than the page (a word starting one contact in eight: 13 ms for 10,000 matches at 1M contacts).
NAME_COUNT_CAP = 1_000
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


SEARCH_PREFIX_LENGTH = 12  # the longest word prefix the PostgreSQL index holds (migration 0008)


class _SearchPrefixes(Func):
    """``addressbook_search_prefixes(text)``: every prefix of every word of a search text, up to
    SEARCH_PREFIX_LENGTH letters (PostgreSQL function and GIN index of migration 0008)."""

    function = "addressbook_search_prefixes"
    output_field = ArrayField(TextField())


def _starting_words(search_rows: QuerySet, words: list[str]) -> QuerySet:
    """``search_rows`` (ContactSearch) whose text has a word starting with each of ``words``."""
    for word in words:
        search_rows = search_rows.filter(text__contains=" " + word)  # LIKE '% WORD%', % and _ escaped
    return search_rows


def name_search_ids(*, account, query: str, group_id: int | None = None) -> QuerySet | None:
    """The ids (one column, ``id``) of the account's contacts matching a name/company/email query,
    in no order: each word of the query must start a word of the contact's last name, first name,
    company or email (``addressbook.search``); ``None`` when the query has no word.

    Reads ``ContactSearch`` only. On PostgreSQL its GIN index of word prefixes returns exactly the
    rows holding all the query's words (``@>``), then the account and the group (membership) are
    checked on those; a word longer than the index's prefixes is checked with LIKE as well.
    SQLite scans with ``text LIKE '% WORD%'`` per word."""
    words = query_words(query)
    if not words:
        return None
    qs = ContactSearch.objects.filter(account=account)
    if connection.vendor == "postgresql":
        qs = qs.alias(prefixes=_SearchPrefixes("text")).filter(
            prefixes__contains=[word[:SEARCH_PREFIX_LENGTH] for word in words]
        )
        words = [word for word in words if len(word) > SEARCH_PREFIX_LENGTH]
    qs = _starting_words(qs, words)
    if group_id:
        qs = qs.filter(contact_id__in=Membership.objects.filter(group_id=group_id).values("contact_id"))
    return qs.values(id=F("contact_id"))


def contacts_search(*, account, query: str = "", group_id: int | None = None) -> QuerySet[Contact]:
    """The account's contacts matching ``query`` (a number prefix, or words starting words of a
    name, company or email: ``name_search_ids``), newest first.

    Without a number, the account is filtered as a one-value range and the rows are ordered by
    (account, -id): with ``account_id = X`` PostgreSQL drops the constant account from the sort,
    and then the primary key serves ``ORDER BY id DESC`` as well as the (account, -id) list
    index. It costs both the same, but walking the primary key backwards reads every newer
    contact of the other accounts first (100,000 rows for the first page in the benchmark, 15 ms
    instead of 0.2 ms). Only the list index is ordered by (account, -id). A number search keeps
    ``account_id = X``: the (account, mobile) index then bounds its scan by the number prefix,
    which a range on the account would not let it do."""
    query = query.strip()
    prefix = number_prefix(query, default_region=account.default_region) if query else None
    if prefix:
        qs = Contact.objects.filter(account=account, mobile__startswith=prefix)
    else:
        qs = Contact.objects.filter(account_id__gte=account.id, account_id__lte=account.id)
        if query:
            matches = name_search_ids(account=account, query=query)
            qs = qs.filter(id__in=matches) if matches is not None else qs.none()  # no word, nothing to find
    if group_id:
        qs = qs.filter(membership__group_id=group_id)
    return qs.order_by("account_id", "-id")


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
    return _count_label(_count_matches(qs))


def keyset_page(qs: QuerySet, *, after: int | None, before: int | None, params: dict, per_page: int = PAGE_SIZE):
    """A page of ``qs`` (ordered by -id, possibly after columns an equality or range filter fixes)
    after/before an id: two queries whatever the depth, no OFFSET."""
    if before:
        rows = list(qs.filter(id__gt=before).reverse()[: per_page + 1])
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
    return _page(rows, has_next=has_next, has_previous=has_previous, params=params)


def _page(rows: list, *, has_next: bool, has_previous: bool, params: dict) -> KeysetPage:
    page = KeysetPage(object_list=rows, count_label="", has_next=has_next and bool(rows), has_previous=has_previous)
    if rows:
        page.next_query = urlencode({**params, "after": rows[-1].id})
        page.previous_query = urlencode({**params, "before": rows[0].id})
    return page


def _count_label(n: int, cap: int = COUNT_CAP) -> str:
    return f"{cap:,}+" if n > cap else f"{n:,}"


_BLACKLISTED_SQL = (
    "EXISTS (SELECT 1 FROM addressbook_blacklistentry b WHERE b.account_id = c.account_id AND b.number = c.mobile)"
)


def _name_search_page(
    ids: QuerySet, *, account, after: int | None, before: int | None, per_page: int
) -> tuple[list[Contact], int, bool]:
    """One query over the matching ids (``ids``: one column named ``id``; at most NAME_COUNT_CAP + 1
    of them, in any order): the contacts of the page after/before the cursor (newest first, with
    ``blacklisted``), the capped count of the matches, and whether more matches lie beyond the
    page in the reading direction. The rows are meaningful only when the count is at most
    NAME_COUNT_CAP (all matches were seen).

    The matches are read once, for the count and the page, and the page's contacts joined by id."""
    matches_sql, params = ids.order_by()[: NAME_COUNT_CAP + 1].query.sql_with_params()
    where, order = ("w.id > %s", "ASC") if before else ("w.id < %s", "DESC")
    cursor_value = before or after
    page = (
        f"SELECT w.id, w.total FROM (SELECT m.id, COUNT(*) OVER () AS total FROM ({matches_sql}) m) w "
        f"{'WHERE ' + where if cursor_value else ''} ORDER BY w.id {order} LIMIT %s"
    )
    sql = (
        f"SELECT c.*, {_BLACKLISTED_SQL} AS blacklisted, p.total FROM ({page}) p "
        f"JOIN addressbook_contact c ON c.id = p.id AND c.account_id = %s ORDER BY c.id {order}"
    )
    found = list(
        Contact.objects.raw(sql, [*params, *([cursor_value] if cursor_value else []), per_page + 1, account.id])
    )
    total = found[0].total if found else ids.order_by()[: NAME_COUNT_CAP + 1].count()
    rows = found[:per_page]
    return (rows[::-1] if before else rows), total, len(found) > per_page


def _count_matches(qs: QuerySet) -> int:
    return qs.order_by().values("id")[: COUNT_CAP + 1].count()


def contact_page(
    *, account, query: str = "", group_id: int | None = None, after: int | None = None, before: int | None = None
) -> KeysetPage:
    """The contact list page: the rows with their blacklist flags and the capped count, in 2 queries
    (a name search: 1, or 3 when it matches more than NAME_COUNT_CAP contacts). A name search reads its
    matching ids from ``ContactSearch`` once, for the page and the count, joining the page's rows."""
    params = {k: v for k, v in {"q": query, "group": group_id or ""}.items() if v}
    query = query.strip()
    is_number = bool(query) and number_prefix(query, default_region=account.default_region) is not None
    matches = name_search_ids(account=account, query=query, group_id=group_id) if query and not is_number else None
    if matches is not None:
        rows, total, more = _name_search_page(matches, account=account, after=after, before=before, per_page=PAGE_SIZE)
        if total <= NAME_COUNT_CAP:
            has_next, has_previous = (True, more) if before else (more, bool(after))
            page = _page(rows, has_next=has_next, has_previous=has_previous, params=params)
            page.count_label = _count_label(total, NAME_COUNT_CAP)
            return page
    if matches is not None:
        # More than NAME_COUNT_CAP matches: common words, dense among the contacts. Walk the
        # contacts newest first and check each one's search row by primary key (a cheap LIKE on
        # its text): about 400 rows for a page of a word starting one contact in eight, 1 ms,
        # where reading every match from the index first took 30 ms.
        found = _starting_words(ContactSearch.objects.filter(contact_id=OuterRef("id")), query_words(query))
        qs = Contact.objects.filter(account_id__gte=account.id, account_id__lte=account.id).filter(Exists(found))
        if group_id:
            qs = qs.filter(membership__group_id=group_id)
        qs = qs.order_by("account_id", "-id")
    else:
        qs = contacts_search(account=account, query=query, group_id=group_id)
    blacklisted = BlacklistEntry.objects.filter(account_id=OuterRef("account_id"), number=OuterRef("mobile"))
    page = keyset_page(qs.annotate(blacklisted=Exists(blacklisted)), after=after, before=before, params=params)
    page.count_label = _count_label(total, NAME_COUNT_CAP) if matches is not None else _capped_count(qs)
    return page


def contact_imports_indexing(*, account) -> bool:
    """Whether a done import of the account still has contacts that name search cannot find yet
    (its indexing task has not finished: ``ContactImport.search_indexed_at``)."""
    return ContactImport.objects.filter(
        account=account, status=ContactImport.Status.DONE, search_indexed_at__isnull=True
    ).exists()


def groups_with_sizes(*, account) -> list[Group]:
    return list(Group.objects.filter(account=account).annotate(size=Count("membership")).order_by("name"))


def duplicate_numbers(*, account, limit: int = 200) -> list[dict]:
    """Numbers present more than once in the account, with how many times (a pass over the account's
    contacts: the (account, mobile) index has pattern-ops order, so the grouping hashes)."""
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
