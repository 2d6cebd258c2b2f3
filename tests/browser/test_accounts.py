import re

import pytest
from django.core import mail

from campaigns.gateways import locmem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_signup_confirm_login_certify_mobile_and_get_twenty_credits(live_server, page):
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Open an account").click()
    page.fill("#id_account_id", "brandnew")
    page.fill("#id_email", "owner@brandnew.example")
    page.fill("#id_password1", "a-Good-passw0rd")
    page.fill("#id_password2", "a-Good-passw0rd")
    page.check("#id_consent")
    page.get_by_role("button", name="Create my account").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()

    [welcome] = mail.outbox
    assert welcome.to == ["owner@brandnew.example"]
    link = re.search(r"https?://\S+/accounts/confirm/\S+", welcome.body).group(0)
    page.goto(live_server.url + re.sub(r"^https?://[^/]+", "", link))
    page.get_by_role("heading", name="Your email address is confirmed").wait_for()

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "brandnew")
    page.fill("#id_password", "a-Good-passw0rd")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    prompt = page.get_by_test_id("profile-prompt")
    assert "certified mobile" in prompt.inner_text()
    assert "0" == page.get_by_test_id("balance").inner_text().split()[0]

    prompt.get_by_role("link", name="Certify my mobile").click()
    assert "Call our support" in page.get_by_test_id("support-phone").inner_text()
    page.fill("#id_number", "06 12 34 56 78")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_selector("#id_code")
    [sms] = locmem.outbox
    assert sms.to == "+33612345678"
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)
    page.fill("#id_code", code)
    page.get_by_role("button", name="Certify").click()
    page.get_by_test_id("mobile-certified").wait_for()
    assert page.get_by_test_id("balance").inner_text().split()[0] == "20"

    # Dismissing the prompt hides it (htmx swap) without leaving the page.
    page.goto(f"{live_server.url}/")
    page.get_by_test_id("profile-prompt").get_by_role("button", name="Dismiss").click()
    page.get_by_test_id("profile-prompt").wait_for(state="detached")
