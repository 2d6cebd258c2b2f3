import datetime
from decimal import Decimal

import factory
from django.utils import timezone


class UserFactory(factory.django.DjangoModelFactory):
    """A confirmed customer account with a complete-enough profile; no credits."""

    class Meta:
        model = "accounts.User"
        skip_postgeneration_save = True

    account_id = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.account_id}@example.com")
    first_name = "Jeanne"
    last_name = "Martin"
    email_confirmed_at = factory.LazyFunction(timezone.now)
    consent_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery-9")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


# campaigns (composer) ---------------------------------------------------------------------------


class ContactFactory(factory.django.DjangoModelFactory):
    """A contact findable by name search, as the services leave one (its search row written)."""

    class Meta:
        model = "addressbook.Contact"
        skip_postgeneration_save = True

    account = factory.SubFactory(UserFactory)
    mobile = factory.Sequence(lambda n: f"+336{n:08d}")
    region = "FR"
    last_name = "Durand"
    first_name = "Paul"

    @factory.post_generation
    def _search(obj, create, extracted, **kwargs):
        if create:
            from addressbook.services import search_index_refresh

            search_index_refresh(account_id=obj.account_id, contact_ids=[obj.pk])


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "addressbook.Group"

    account = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Group {n}")


class RateFactory(factory.django.DjangoModelFactory):
    """The rate for (kind, region), set to ``credits_per_part`` even if the shipped rate card has one."""

    class Meta:
        model = "billing.Rate"

    kind = "sms"
    region = "FR"
    credits_per_part = 1

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        rate, _ = model_class.objects.update_or_create(
            kind=kwargs.pop("kind"), region=kwargs.pop("region"), defaults=kwargs
        )
        return rate


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Campaign"

    account = factory.SubFactory(UserFactory)
    text = "Hello"
    numbers = factory.LazyFunction(lambda: ["+33612345678"])
    status = "scheduled"
    scheduled_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=2))


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Message"

    campaign = factory.SubFactory(CampaignFactory, status="done")
    account = factory.SelfAttribute("campaign.account")
    phone = factory.Sequence(lambda n: f"+336{n:08d}")
    region = "FR"
    text = factory.SelfAttribute("campaign.text")
    parts = 1
    credits = 1
    status = 60


class PackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.Pack"

    credits = 1000
    price_eur = factory.LazyAttribute(lambda p: p.credits * Decimal("0.075"))


class OrderFactory(factory.django.DjangoModelFactory):
    """A pending bank-transfer order for 1,000 credits at 75 EUR."""

    class Meta:
        model = "billing.Order"

    account = factory.SubFactory(UserFactory)
    credits = 1000
    price_eur = factory.LazyFunction(lambda: Decimal("75"))
    method = "transfer"
