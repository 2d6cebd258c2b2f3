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


def test_reserved_credits_cannot_be_spent_until_released(user):
    from billing.services import credits_release, credits_reserve

    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("10"))
    credits_reserve(account_id=user.pk, amount=Decimal("7"))
    user.refresh_from_db()
    assert (user.credit_balance, user.credit_reserved, user.credits_available) == (10, 7, 3)
    with pytest.raises(InsufficientCredits) as refused:
        ledger_post(account_id=user.pk, kind="adjustment", amount=Decimal("-4"))
    assert refused.value.balance == Decimal("3")
    with pytest.raises(InsufficientCredits):
        credits_reserve(account_id=user.pk, amount=Decimal("3.001"))
    ledger_post(account_id=user.pk, kind="refund", amount=Decimal("1"))  # credits always land
    credits_release(account_id=user.pk, amount=Decimal("7"))
    ledger_post(account_id=user.pk, kind="send", amount=Decimal("-11"))
    user.refresh_from_db()
    assert (user.credit_balance, user.credit_reserved) == (0, 0)
    assert sum(e.amount for e in LedgerEntry.objects.filter(account=user)) == user.credit_balance


def test_transfer_cannot_spend_reserved_credits(user, other_user):
    from billing.services import credits_reserve, transfer_create

    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("10"))
    credits_reserve(account_id=user.pk, amount=Decimal("8"))
    with pytest.raises(InsufficientCredits):
        transfer_create(sender_id=user.pk, recipient_account_id=other_user.account_id, amount=Decimal("3"))
    transfer_create(sender_id=user.pk, recipient_account_id=other_user.account_id, amount=Decimal("2"))
    user.refresh_from_db()
    assert (user.credit_balance, user.credit_reserved) == (8, 8)


def test_database_refuses_a_reservation_beyond_the_balance(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        type(user).objects.filter(pk=user.pk).update(credit_reserved=Decimal("1"))
