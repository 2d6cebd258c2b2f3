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
