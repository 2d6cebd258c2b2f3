import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_demo_user_logs_in_and_sees_the_home_page(live_server, page):
    call_command("demo_setup")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo-password-2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text().startswith("Welcome")
    assert "1000" in page.get_by_test_id("balance").inner_text()
    for link in ("New SMS", "My SMS", "Address book", "Transactions", "My account"):
        assert page.get_by_role("link", name=link, exact=True).first.is_visible()
    # Static files are served (our stylesheet applied: the top bar is dark).
    background = page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(17, 24, 39)"


def test_wrong_password_shows_an_error(live_server, page, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.account_id)
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").is_visible()
