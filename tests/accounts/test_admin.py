from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AccountEvent
from billing.services import ledger_post
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = UserFactory(is_staff=True, is_superuser=True, account_id="staffer", language="en")
    client.force_login(staff)
    client.staff = staff
    return client


CHANGELIST = "admin:accounts_user_changelist"


@pytest.mark.parametrize(
    "field,value,query",
    [
        ("account_id", "findme", "FINDME"),
        ("email", "boss@findme.example", "boss@findme"),
        ("company", "Findme SARL", "findme sarl"),
        ("mobile", "+33612345678", "612345678"),
        ("mobile", "+33612345678", "06 12 34 56 78"),
    ],
)
def test_staff_finds_accounts_by_id_email_company_or_phone(staff_client, user, field, value, query):
    target = UserFactory(**{field: value})
    response = staff_client.get(reverse(CHANGELIST), {"q": query})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [target]


def test_changelist_shows_states_and_balance_with_a_fixed_number_of_queries(
    staff_client, django_assert_max_num_queries
):
    for _ in range(20):
        account = UserFactory(email_confirmed_at=None)
        ledger_post(account_id=account.pk, kind="purchase", amount=Decimal("5"))
    with django_assert_max_num_queries(8):
        response = staff_client.get(reverse(CHANGELIST))
    assert response.status_code == 200 and b"5.000" in response.content


def test_block_unblock_and_activate_actions_are_recorded(staff_client, user, other_user):
    pending = UserFactory(email_confirmed_at=None)
    url = reverse(CHANGELIST)
    staff_client.post(url, {"action": "block_accounts", "_selected_action": [user.pk]})
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert user.is_blocked and not user.can_send() and not other_user.is_blocked
    staff_client.post(url, {"action": "unblock_accounts", "_selected_action": [user.pk]})
    staff_client.post(url, {"action": "activate_accounts", "_selected_action": [pending.pk]})
    user.refresh_from_db()
    pending.refresh_from_db()
    assert not user.is_blocked and pending.is_email_confirmed
    events = AccountEvent.objects.filter(actor=staff_client.staff).order_by("id")
    assert [(e.account_id, e.kind) for e in events] == [
        (user.pk, "blocked"),
        (user.pk, "unblocked"),
        (pending.pk, "activated"),
    ]
    page = staff_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    assert page.status_code == 200 and b"Blocked" in page.content


def test_change_form_cannot_edit_the_account_id_or_the_balance(staff_client, user):
    url = reverse("admin:accounts_user_change", args=[user.pk])
    page = staff_client.get(url)
    assert b'name="account_id"' not in page.content and b'name="credit_balance"' not in page.content
    assert b'name="credit_reserved"' not in page.content
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(
        {
            "account_id": "renamed",
            "credit_balance": "999",
            "credit_reserved": "5",
            "city": "Nantes",
            "groups": [],
            "user_permissions": [],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        }
    )
    data = {k: v for k, v in data.items() if k not in ("groups", "user_permissions")}
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.city == "Nantes" and user.account_id != "renamed" and user.credit_balance == user.credit_reserved == 0
