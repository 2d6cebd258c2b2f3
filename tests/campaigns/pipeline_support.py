"""Helpers shared by the sending-pipeline tests: rates, funded accounts, campaigns."""

from decimal import Decimal

from django.utils import timezone

from billing.models import Rate
from billing.services import ledger_post
from campaigns.models import Campaign


def make_rates(kind: str = "sms", **rates: str) -> None:
    """Replace the rate card of ``kind`` (the data migration's default card) with known prices."""
    rates = rates or {"FR": "1.000", "GB": "2.000", "MQ": "3.000"}
    Rate.objects.filter(kind=kind).delete()
    Rate.objects.bulk_create(
        [Rate(kind=kind, region=region, credits_per_part=Decimal(v)) for region, v in rates.items()]
    )


def fund(user, amount: str = "1000") -> None:
    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal(amount), reference="test")
    user.refresh_from_db()


def make_campaign(
    user, *, numbers=(), contacts=(), groups=(), text="Bonjour", status="scheduled", **kwargs
) -> Campaign:
    kwargs.setdefault("scheduled_at", timezone.now())
    campaign = Campaign.objects.create(account=user, text=text, numbers=list(numbers), status=status, **kwargs)
    if contacts:
        campaign.contacts.set(contacts)
    if groups:
        campaign.groups.set(groups)
    return campaign


def fr(n: int, last: int | None = None) -> str:
    """A valid French mobile; ``last`` forces the final digit (the simulator's outcome)."""
    number = f"+3361{n:07d}"
    return number if last is None else number[:-1] + str(last)


def expand(campaign) -> list[tuple[int, int]]:
    """Run the campaign's expansion in place; return the batches it enqueued (first id, last id)."""
    from campaigns import pipeline

    batches: list[tuple[int, int]] = []
    pipeline.campaign_expand(campaign_id=campaign.pk, enqueue=lambda first, last: batches.append((first, last)))
    return batches
