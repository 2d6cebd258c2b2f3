import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import LedgerEntry, Order
from billing.services import ledger_post, order_mark_paid
from tests.factories import OrderFactory, PackFactory

pytestmark = pytest.mark.django_db


# --- Public pages ---------------------------------------------------------------------------


def test_rates_page_is_public_and_shows_unit_prices(client, catalogue):
    response = client.get(reverse("pricing:rates"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "10000" in html and "0.0650 €" in html and "contact us" in html


def test_international_rates_search(client, catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        response = client.get(reverse("pricing:international"), {"q": "martin"})
    html = response.content.decode()
    assert "Martinique (MQ)" in html and "+596" in html and "1.300" in html and "France (FR)" not in html
    by_code = client.get(reverse("pricing:international"), {"q": "+44"}).content.decode()
    assert "United Kingdom (GB)" in by_code and "Guernsey (GG)" in by_code
    assert "No destination matches" in client.get(reverse("pricing:international"), {"q": "zzz"}).content.decode()


def _simulate(client, **rows):
    params = {"kind": "sms", "text": "a" * 200, "r-TOTAL_FORMS": "4", "r-INITIAL_FORMS": "0"}
    for i, (region, count) in enumerate(rows.items()):
        params[f"r-{i}-region"], params[f"r-{i}-count"] = region, str(count)
    return client.get(reverse("pricing:simulator"), params)


def test_simulator_gives_parts_credits_and_pack(client, catalogue):
    response = _simulate(client, FR=300, GB=100, MQ=10)
    assert response.status_code == 200
    quote = response.context["result"]
    assert quote.parts == 2 and quote.total_credits == Decimal("600") + Decimal("220") + Decimal("26")
    html = response.content.decode()
    assert "2 parts per message" in html and "846" in html and "1000 credits for 75.00" in html


def test_simulator_without_recipients_or_beyond_packs(client, catalogue):
    empty = _simulate(client)
    assert empty.context["result"] is None and "at least one country" in empty.content.decode()
    huge = _simulate(client, FR=9_000_000)
    assert huge.context["result"].pack is None and "No pack is large enough" in huge.content.decode()
    first = client.get(reverse("pricing:simulator"))
    assert first.status_code == 200 and first.context["result"] is None


def test_simulator_refuses_an_uncovered_destination_clearly(client, catalogue):
    from billing.models import Rate

    Rate.objects.filter(region="KP").delete()
    Rate.objects.create(kind="voice", region="KP", country_name="North Korea", credits_per_part=Decimal("9"))
    response = _simulate(client, KP=1)
    assert "We do not send to KP" in response.content.decode() and response.context["result"] is None


# --- Buying ---------------------------------------------------------------------------------


def test_buy_hides_card_without_stripe_keys(client_logged, catalogue, settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""
    html = client_logged.get(reverse("billing:buy")).content.decode()
    assert 'value="transfer"' in html and 'value="card"' not in html
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_x"
    assert 'value="card"' in client_logged.get(reverse("billing:buy")).content.decode()


def test_buy_by_transfer_creates_a_pending_order_with_instructions(client_logged, user, catalogue, settings):
    settings.BANK_IBAN = "FR76 1234 5678 9012 3456 7890 123"
    pack = PackFactory(credits=100, price_eur=Decimal("8.5"))
    response = client_logged.post(reverse("billing:buy"), {"pack": pack.pk, "method": "transfer"}, follow=True)
    order = Order.objects.get(account=user)
    assert (order.status, order.credits, order.method) == ("pending", 100, "transfer")
    html = response.content.decode()
    assert settings.BANK_IBAN in html and order.reference in html
    user.refresh_from_db()
    assert user.credit_balance == 0


def test_buy_refuses_card_when_disabled_and_bad_pack(client_logged, catalogue, settings):
    settings.STRIPE_SECRET_KEY = ""
    pack = PackFactory()
    response = client_logged.post(reverse("billing:buy"), {"pack": pack.pk, "method": "card"})
    assert response.status_code == 200 and response.context["form"].errors["method"]
    response = client_logged.post(reverse("billing:buy"), {"pack": 999999, "method": "transfer"})
    assert response.context["form"].errors["pack"] and not Order.objects.exists()


def test_cheque_instructions(client_logged, user, settings):
    settings.CHEQUE_PAYEE = "ACME SMS SAS"
    order = OrderFactory(account=user, method="cheque")
    html = client_logged.get(reverse("billing:order", args=[order.uuid])).content.decode()
    assert "payable to ACME SMS SAS" in html


def test_other_account_gets_404_for_order_and_invoice(client, user, other_user):
    order = OrderFactory(account=user)
    order_mark_paid(order_id=order.pk)
    client.force_login(other_user)
    assert client.get(reverse("billing:order", args=[order.uuid])).status_code == 404
    assert client.get(reverse("billing:invoice", args=[order.uuid])).status_code == 404
    client.force_login(user)
    response = client.get(reverse("billing:invoice", args=[order.uuid]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"


def test_pages_need_login(client):
    for name in ("billing:transactions", "billing:buy", "billing:transfer"):
        assert client.get(reverse(name)).status_code == 302


# --- Transactions ---------------------------------------------------------------------------


def test_transactions_list_only_own_entries_with_invoice_links(
    client_logged, user, other_user, django_assert_max_num_queries
):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"), reference="Welcome bonus")
    ledger_post(account_id=other_user.pk, kind="bonus", amount=Decimal("20"), reference="Not yours")
    for _ in range(3):
        order_mark_paid(order_id=OrderFactory(account=user).pk)
    with django_assert_max_num_queries(6):
        response = client_logged.get(reverse("billing:transactions"))
    html = response.content.decode()
    assert "Welcome bonus" in html and "Not yours" not in html
    assert html.count("/invoice.pdf") == 3


def test_transactions_filters_and_keyset_pages(client_logged, user, monkeypatch):
    monkeypatch.setattr("billing.views.PAGE_SIZE", 2)
    for i in range(5):
        ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("1"), reference=f"entry {i}")
    ledger_post(account_id=user.pk, kind="send", amount=Decimal("-1"), reference="a send")
    first = client_logged.get(reverse("billing:transactions"), {"kind": "bonus"})
    assert [e.reference for e in first.context["entries"]] == ["entry 4", "entry 3"]
    page = first.context["page"]
    assert page.has_next and not page.has_previous and "kind=bonus" in page.next_query
    second = client_logged.get(f"{reverse('billing:transactions')}?{page.next_query}")
    assert [e.reference for e in second.context["entries"]] == ["entry 2", "entry 1"]
    back = client_logged.get(f"{reverse('billing:transactions')}?{second.context['page'].previous_query}")
    assert [e.reference for e in back.context["entries"]] == ["entry 4", "entry 3"]
    future = client_logged.get(reverse("billing:transactions"), {"since": "2999-01-01"})
    assert list(future.context["entries"]) == []


def test_transactions_csv_export(client_logged, user, other_user):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"), reference="=HYPERLINK()")
    ledger_post(account_id=user.pk, kind="send", amount=Decimal("-1.5"))
    ledger_post(account_id=other_user.pk, kind="bonus", amount=Decimal("7"))
    response = client_logged.get(reverse("billing:transactions"), {"export": "csv", "kind": "bonus"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][1] == "Kind" and len(rows) == 2
    assert rows[1][1:] == ["bonus", "20.000", "20.000", "'=HYPERLINK()"]


# --- Transfers ------------------------------------------------------------------------------


def test_transfer_view_success_and_refusals(client_logged, user, other_user):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    url = reverse("billing:transfer")
    for data, message in [
        ({"recipient": user.account_id, "amount": "1"}, "yourself"),
        ({"recipient": "nobody-at-all", "amount": "1"}, "No account has this ID"),
        ({"recipient": other_user.account_id, "amount": "21"}, "Only 20 credits are available"),
    ]:
        response = client_logged.post(url, data)
        assert response.status_code == 200 and message in response.content.decode(), message
    for amount in ("1.0001", "0", "-1", "abc"):  # Django's own (translated) field messages
        response = client_logged.post(url, {"recipient": other_user.account_id, "amount": amount})
        assert response.status_code == 200 and response.context["form"].errors["amount"], amount
    assert LedgerEntry.objects.count() == 1
    response = client_logged.post(url, {"recipient": other_user.account_id, "amount": "2.5", "reference": "Thanks"})
    assert response.status_code == 302
    other_user.refresh_from_db()
    assert other_user.credit_balance == Decimal("2.5")


def test_pending_card_order_polls_until_paid(client_logged, user):
    order = OrderFactory(account=user, method="card", stripe_session_id="cs_test_poll")
    url = reverse("billing:order", args=[order.uuid])
    assert 'hx-trigger="every 3s"' in client_logged.get(url).content.decode()
    order_mark_paid(order_id=order.pk, stripe_session_id="cs_test_poll")
    html = client_logged.get(url).content.decode()
    assert 'hx-trigger="every 3s"' not in html and "Download invoice" in html


def test_reserved_credits_are_shown_and_cannot_be_transferred(client_logged, user, other_user):
    from billing.services import credits_reserve

    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    credits_reserve(account_id=user.pk, amount=Decimal("5"))
    page = client_logged.get(reverse("billing:transfer")).content.decode()
    assert "5 reserved" in page and "Available now: 15 credits" in page
    response = client_logged.post(reverse("billing:transfer"), {"recipient": other_user.account_id, "amount": "16"})
    assert "Only 15 credits are available" in response.content.decode()
    other_user.refresh_from_db()
    assert other_user.credit_balance == 0
