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


class ContactFactory(factory.django.DjangoModelFactory):
    """A French mobile contact; pass ``account``."""

    class Meta:
        model = "addressbook.Contact"

    mobile = factory.Sequence(lambda n: f"+3361{n:07d}")
    region = "FR"
    last_name = "Durand"
    first_name = factory.Sequence(lambda n: f"Camille{n}")


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "addressbook.Group"

    name = factory.Sequence(lambda n: f"Group {n}")
