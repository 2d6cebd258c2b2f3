"""Read paths of the billing pages; account data is always read scoped to one account."""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import LedgerEntry, Rate

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def ledger_entries(
    *, account_id: int, kind: str = "", since: datetime.date | None = None, until: datetime.date | None = None
) -> QuerySet[LedgerEntry]:
    """An account's ledger entries, optionally of one kind and within a period of local dates (inclusive)."""
    entries = LedgerEntry.objects.filter(account_id=account_id)
    tz = timezone.get_current_timezone()
    if kind:
        entries = entries.filter(kind=kind)
    if since:
        entries = entries.filter(created_at__gte=datetime.datetime.combine(since, datetime.time(), tz))
    if until:
        entries = entries.filter(
            created_at__lt=datetime.datetime.combine(until, datetime.time(), tz) + datetime.timedelta(days=1)
        )
    return entries


def _cursor(entry: LedgerEntry) -> str:
    micros = (entry.created_at - EPOCH) // datetime.timedelta(microseconds=1)
    return f"{micros}-{entry.pk}"


def _parse_cursor(value: str) -> tuple[datetime.datetime, int] | None:
    micros, _, pk = value.partition("-")
    if not (micros.isdigit() and pk.isdigit()):
        return None
    return EPOCH + datetime.timedelta(microseconds=int(micros)), int(pk)


@dataclass
class KeysetPage:
    """One page of entries, newest first, and the queries of its neighbours (for includes/pagination.html).

    Ordered by (created_at, id) descending, which the (account, -created_at, -id) index serves
    directly, filtered or not: no OFFSET and no COUNT at any depth.
    """

    object_list: list
    has_previous: bool
    has_next: bool
    params: dict = field(default_factory=dict)

    @property
    def previous_query(self) -> str:
        return urlencode({**self.params, "after": _cursor(self.object_list[0])}) if self.object_list else ""

    @property
    def next_query(self) -> str:
        return urlencode({**self.params, "before": _cursor(self.object_list[-1])}) if self.object_list else ""


def keyset_page(entries: QuerySet, *, before: str = "", after: str = "", size: int, params: dict) -> KeysetPage:
    """The page older than cursor ``before``, newer than ``after``, or the newest page."""
    params = {k: v for k, v in params.items() if k not in ("before", "after") and v}
    newer = _parse_cursor(after) if after else None
    older = _parse_cursor(before) if before else None
    if newer is not None:
        at, pk = newer
        rows = list(
            entries.filter(Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(id__gt=pk))).order_by("created_at", "id")[
                : size + 1
            ]
        )
        return KeysetPage(rows[:size][::-1], has_previous=len(rows) > size, has_next=True, params=params)
    if older is not None:
        at, pk = older
        entries = entries.filter(Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(id__lt=pk)))
    rows = list(entries.order_by("-created_at", "-id")[: size + 1])
    return KeysetPage(
        rows[:size], has_previous=older is not None and bool(rows), has_next=len(rows) > size, params=params
    )


@dataclass(frozen=True, slots=True)
class CountryRates:
    region: str
    name: str
    calling_code: int | None
    sms: Decimal | None = None  # credits per part; None when the type is not offered there
    voice: Decimal | None = None


def rate_card(*, query: str = "") -> list[CountryRates]:
    """One row per destination with its Pro SMS and Voice SMS rates, in one query (BIL-3).

    ``query`` matches the country name (contains), the ISO region (exact) or the calling code
    (``33`` or ``+33``).
    """
    rates = Rate.objects.order_by("country_name", "region")
    if query:
        condition = Q(country_name__icontains=query) | Q(region__iexact=query)
        digits = query.removeprefix("+")
        if digits.isdigit() and len(digits) <= 4:
            condition |= Q(calling_code=int(digits))
        rates = rates.filter(condition)
    rows: dict[str, dict] = {}
    for rate in rates.values("region", "country_name", "calling_code", "kind", "credits_per_part"):
        row = rows.setdefault(
            rate["region"],
            {"region": rate["region"], "name": rate["country_name"], "calling_code": rate["calling_code"]},
        )
        row[rate["kind"]] = rate["credits_per_part"]
    return [CountryRates(**row) for row in rows.values()]
