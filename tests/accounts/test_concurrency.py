"""Races that only a real database with concurrent transactions can show (PostgreSQL)."""

from decimal import Decimal

import pytest
from django.core import mail

from accounts import services
from billing.models import LedgerEntry
from billing.services import ledger_post
from campaigns.gateways import locmem
from tests.concurrency import race
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_accounts_certifying_one_number_at_once_get_one_bonus(require_postgres):
    first, second = UserFactory(), UserFactory()
    services.mobile_certification_start(user=first, raw_number="0612345678")
    services.mobile_certification_start(user=second, raw_number="0612345678")
    codes = [sms.text.split("code is ")[1][:6] for sms in locmem.outbox]
    outcomes = race(
        lambda: services.mobile_certification_verify(user=first, code=codes[0]),
        lambda: services.mobile_certification_verify(user=second, code=codes[1]),
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["AccountError", "NoneType"]
    assert LedgerEntry.objects.filter(kind="bonus").count() == 1


def test_concurrent_debits_crossing_the_threshold_send_one_alert(require_postgres):
    user = UserFactory()
    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("100"))
    services.credit_alert_set(user=user, threshold=Decimal("90"))
    outcomes = race(*[lambda: ledger_post(account_id=user.pk, kind="send", amount=Decimal("-1"))] * 20)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    user.refresh_from_db()
    assert user.credit_balance == Decimal("80") and not user.credit_alert_armed
    assert len([m for m in mail.outbox if m.to == [user.email]]) == 1
