"""The one pricing function (BIL-2): used by the simulator, the composer and the sending pipeline."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .models import Pack, Rate


class UncoveredDestination(Exception):
    """No rate for this message type and destination: the platform does not send there."""

    def __init__(self, *, kind: str, region: str):
        self.kind, self.region = kind, region
        super().__init__(f"No {kind} rate for destination {region or 'unknown'}.")


class RateTable:
    """A message type's rates, loaded in one query and reused for a whole job (no query per row)."""

    def __init__(self, kind: str, rates: Mapping[str, Decimal]):
        self.kind = kind
        self.rates = dict(rates)

    @classmethod
    def load(cls, kind: str) -> "RateTable":
        return cls(kind, dict(Rate.objects.filter(kind=kind).values_list("region", "credits_per_part")))

    def credits_per_part(self, region: str) -> Decimal:
        try:
            return self.rates[region]
        except KeyError:
            raise UncoveredDestination(kind=self.kind, region=region) from None

    def price(self, *, region: str, parts: int) -> Decimal:
        """Credits for one message of ``parts`` parts to ``region``."""
        return self.credits_per_part(region) * parts


@dataclass(frozen=True, slots=True)
class QuoteLine:
    region: str
    count: int
    credits_per_part: Decimal
    credits: Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """What a campaign costs (BIL-4): parts of the text, credits per destination, the pack that covers it.

    ``pack`` is the cheapest active pack with at least ``total_credits`` credits, or None when
    no pack is large enough ("contact us").
    """

    kind: str
    parts: int
    encoding: str
    lines: tuple[QuoteLine, ...]
    total_credits: Decimal
    pack: Pack | None
    non_gsm_chars: tuple[str, ...] = ()


def cheapest_pack(credits: Decimal) -> Pack | None:
    """The cheapest active pack holding at least ``credits`` credits, or None ("contact us")."""
    return Pack.objects.filter(active=True, credits__gte=credits).order_by("price_eur", "credits").first()


def quote(*, kind: str, text: str, recipients_by_region: Mapping[str, int]) -> Quote:
    """Price a campaign of ``text`` to ``recipients_by_region`` (ISO region -> count).

    Raises ``UncoveredDestination`` for a region without a rate. Uses ``RateTable.price``, the
    function the sending pipeline debits with, so the simulator and the debit always agree.
    """
    from campaigns.text import analyze

    info = analyze(text)
    parts = max(info.parts, 1)
    table = RateTable.load(kind)
    lines = tuple(
        QuoteLine(
            region=region,
            count=count,
            credits_per_part=table.credits_per_part(region),
            credits=table.price(region=region, parts=parts) * count,
        )
        for region, count in recipients_by_region.items()
        if count > 0
    )
    total = sum((line.credits for line in lines), Decimal(0))
    return Quote(
        kind=kind,
        parts=parts,
        encoding=info.encoding,
        lines=lines,
        total_credits=total,
        pack=cheapest_pack(total) if total > 0 else None,
        non_gsm_chars=info.non_gsm_chars,
    )
