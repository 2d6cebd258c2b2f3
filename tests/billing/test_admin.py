from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Invoice, LedgerEntry, Order
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.staff = staff
    return client


def test_mark_paid_action_credits_exactly_once(admin_client, user):
    order = OrderFactory(account=user)
    url = reverse("admin:billing_order_changelist")
    for _ in range(2):
        response = admin_client.post(url, {"action": "mark_paid", "_selected_action": [order.pk]}, follow=True)
        assert response.status_code == 200
    order.refresh_from_db()
    user.refresh_from_db()
    assert order.status == "paid" and order.marked_paid_by == admin_client.staff
    assert user.credit_balance == Decimal("1000")
    assert LedgerEntry.objects.filter(account=user).count() == 1 and Invoice.objects.count() == 1


def test_adjustment_form_requires_a_reason_and_writes_a_ledger_entry(admin_client, user):
    url = reverse("admin:billing_ledgerentry_adjust")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"account": user.account_id, "amount": "5", "reason": ""})
    assert response.status_code == 200 and not LedgerEntry.objects.exists()
    response = admin_client.post(url, {"account": user.account_id, "amount": "-1", "reason": "Oops"})
    assert "Insufficient credits" in response.content.decode() and not LedgerEntry.objects.exists()
    response = admin_client.post(url, {"account": user.account_id, "amount": "5.5", "reason": "Outage goodwill"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.note, entry.created_by) == (
        "adjustment",
        Decimal("5.5"),
        "Outage goodwill",
        admin_client.staff,
    )


def test_ledger_is_read_only_and_rates_packs_editable(admin_client, catalogue, user):
    assert admin_client.get(reverse("admin:billing_ledgerentry_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert admin_client.get(reverse("admin:billing_rate_changelist"), {"q": "Martinique"}).status_code == 200
    assert admin_client.get(reverse("admin:billing_pack_changelist")).status_code == 200
    order = OrderFactory(account=user)
    assert admin_client.get(reverse("admin:billing_order_change", args=[order.pk])).status_code == 200


def test_non_staff_cannot_adjust(client, user):
    client.force_login(user)
    response = client.post(
        reverse("admin:billing_ledgerentry_adjust"), {"account": user.account_id, "amount": "5", "reason": "me"}
    )
    assert response.status_code == 302 and not LedgerEntry.objects.exists()
    assert Order.objects.count() == 0
