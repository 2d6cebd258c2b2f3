from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from billing.services import ledger_post

DEMO = {"account_id": "demo", "password": "demo-password-2026", "email": "demo@example.com"}
STAFF = {"account_id": "admin", "password": "admin-password-2026", "email": "admin@example.com"}


class Command(BaseCommand):
    help = "Create the demo customer (with credits) and a staff superuser, once. Safe to run again."

    def handle(self, *args, **options):
        User = get_user_model()
        with transaction.atomic():
            demo, created = User.objects.get_or_create(
                account_id=DEMO["account_id"],
                defaults={
                    "email": DEMO["email"],
                    "first_name": "Demo",
                    "last_name": "Customer",
                    "company": "Demo SARL",
                    "email_confirmed_at": timezone.now(),
                    "consent_at": timezone.now(),
                },
            )
            if created:
                demo.set_password(DEMO["password"])
                demo.save(update_fields=["password"])
            ledger_post(
                account_id=demo.pk,
                kind="bonus",
                amount=Decimal(settings.DEMO_CREDITS),
                reference="Demo credits",
                idempotency_key=f"demo-credits:{demo.pk}",
            )
            if not User.objects.filter(account_id=STAFF["account_id"]).exists():
                User.objects.create_superuser(STAFF["account_id"], STAFF["email"], STAFF["password"])
        self.stdout.write(
            f"Customer area: account ID '{DEMO['account_id']}', password '{DEMO['password']}'\n"
            f"Admin (/admin/): account ID '{STAFF['account_id']}', password '{STAFF['password']}'"
        )
