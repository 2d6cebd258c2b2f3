"""Verify the money invariant (DESIGN.md, Money): every account's balance equals the sum of its ledger."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import LedgerEntry


class Command(BaseCommand):
    help = "Check that each account's credit balance equals the sum of its ledger entries; exit 1 on a mismatch."

    def handle(self, *args, **options):
        totals = (
            LedgerEntry.objects.filter(account=OuterRef("pk"))
            .order_by()
            .values("account")
            .annotate(total=Sum("amount"))
        )
        money = DecimalField(max_digits=14, decimal_places=3)
        # One query, computed by the database: fast enough for millions of entries.
        accounts = (
            get_user_model()
            .objects.annotate(
                ledger=Coalesce(
                    Subquery(totals.values("total"), output_field=money), Value(Decimal(0)), output_field=money
                )
            )
            .exclude(credit_balance=F("ledger"))
            .values_list("account_id", "credit_balance", "ledger")
            .order_by("pk")
        )
        mismatches = 0
        for account_id, balance, ledger in accounts.iterator(chunk_size=5000):
            mismatches += 1
            self.stderr.write(f"{account_id}: balance {balance} != ledger sum {ledger}")
        checked = get_user_model().objects.count()
        if mismatches:
            raise CommandError(f"{mismatches} of {checked} accounts do not match their ledger.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"{checked} accounts checked: every balance equals its ledger."))
