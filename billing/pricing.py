"""The one pricing function (BIL-2): used by the simulator, the composer and the sending pipeline."""

from collections.abc import Mapping
from decimal import Decimal

from .models import Rate


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
