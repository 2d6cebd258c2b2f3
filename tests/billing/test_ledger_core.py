from decimal import Decimal

import pytest

from billing.models import LedgerEntry
from billing.services import InsufficientCredits, ledger_post

pytestmark = pytest.mark.django_db


def test_post_moves_balance_and_records_balance_after(user):
    entry, created = ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    assert created and entry.balance_after == Decimal("20")
    ledger_post(account_id=user.pk, kind="send", amount=Decimal("-1.1"))
    user.refresh_from_db()
    assert user.credit_balance == Decimal("18.900")
    assert sum(e.amount for e in LedgerEntry.objects.filter(account=user)) == user.credit_balance


def test_debit_beyond_balance_is_refused_and_changes_nothing(user):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("1"))
    with pytest.raises(InsufficientCredits):
        ledger_post(account_id=user.pk, kind="send", amount=Decimal("-1.001"))
    user.refresh_from_db()
    assert user.credit_balance == Decimal("1") and LedgerEntry.objects.filter(account=user).count() == 1


def test_idempotency_key_moves_credits_once(user):
    first, created1 = ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("100"), idempotency_key="k1")
    again, created2 = ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("100"), idempotency_key="k1")
    user.refresh_from_db()
    assert (created1, created2) == (True, False) and first.pk == again.pk and user.credit_balance == Decimal("100")


def test_database_refuses_a_negative_balance(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        type(user).objects.filter(pk=user.pk).update(credit_balance=Decimal("-1"))
