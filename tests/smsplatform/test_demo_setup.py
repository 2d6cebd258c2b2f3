from decimal import Decimal

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_demo_setup_is_idempotent(django_user_model, capsys):
    call_command("demo_setup")
    call_command("demo_setup")
    demo = django_user_model.objects.get(account_id="demo")
    assert demo.credit_balance == Decimal("1000") and demo.ledger_entries.count() == 1
    assert demo.check_password("demo-password-2026") and demo.is_email_confirmed
    assert django_user_model.objects.get(account_id="admin").is_superuser
    assert "account ID 'demo'" in capsys.readouterr().out
