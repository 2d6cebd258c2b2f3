import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing.models import Order
from tests.factories import PackFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_buy_by_bank_transfer_staff_marks_paid_invoice_downloads(live_server, page, browser_login, user, password):
    pack = PackFactory(credits=1500, price_eur=Decimal("100"))
    user.language = "en"  # the pages follow the account's language; this test reads English labels
    user.save(update_fields=["language"])
    browser_login(user)
    page.goto(f"{live_server.url}/billing/buy/")
    page.get_by_label("1500 credits").check()
    page.get_by_label("Bank transfer").check()
    page.get_by_role("button", name="Order").click()
    page.wait_for_url("**/billing/orders/**")
    order = Order.objects.get(account=user)
    assert order.pack == pack
    assert page.get_by_test_id("order-status").inner_text() == "Pending payment"
    assert order.reference in page.get_by_test_id("instructions").inner_text()
    order_url = page.url

    staff = UserFactory(is_staff=True, is_superuser=True, language="en")
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.account_id)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/billing/order/?status__exact=pending")
    page.check(f"input[name=_selected_action][value='{order.pk}']")
    page.select_option("select[name=action]", "mark_paid")
    page.click("button[name=index]")
    assert "1 order(s) marked paid" in page.locator(".messagelist").inner_text()

    page.context.clear_cookies()
    browser_login(user)
    assert "1500" in page.get_by_test_id("balance").inner_text()
    page.goto(f"{live_server.url}/billing/transactions/")
    link = page.get_by_role("link", name="Invoice")
    with page.expect_download() as download_info:
        link.click()
    pdf = PdfReader(io.BytesIO(open(download_info.value.path(), "rb").read()))
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    assert "Total incl. VAT 120.00 EUR" in text
    page.goto(order_url)
    assert page.get_by_test_id("order-status").inner_text() == "Paid"


def test_simulator_updates_live_without_login(live_server, page):
    import importlib

    from django.apps import apps

    # Transactional tests flush the data migration's rows: load the default rate card again.
    importlib.import_module("billing.migrations.0003_default_rate_card_and_packs").forwards(apps, None)
    page.goto(f"{live_server.url}/simulator/")
    page.fill("#id_text", "a" * 200)
    page.fill("#id_r-0-count", "1000")
    total = page.get_by_test_id("total-credits")
    total.wait_for()
    assert total.inner_text() == "2000"  # France, 2 parts, 1 credit per part
    assert "1000" in page.url and "10000 credits" in page.get_by_test_id("pack").inner_text()
