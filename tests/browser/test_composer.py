from decimal import Decimal

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign
from tests.factories import ContactFactory, GroupFactory, RateFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compose_to_numbers_and_a_group_watch_the_counter_and_schedule(live_server, browser_login, user):
    RateFactory(kind="sms", region="FR", credits_per_part=Decimal("1"))
    user.credit_balance = Decimal("100")
    user.save(update_fields=["credit_balance"])
    group = GroupFactory(account=user, name="Clients VIP")
    group.contacts.add(*ContactFactory.create_batch(3, account=user))

    page = browser_login(user)
    page.goto(f"{live_server.url}/sms/new/")
    page.fill("#phone-entry", "06 12 34 56 78, +33 6 98 76 54 32")
    page.click("[data-testid=add-recipients]")
    page.fill("#picker-q", "VIP")
    page.get_by_role("button", name="+ Group: Clients VIP").click()
    expect(page.get_by_test_id("recipients")).to_have_text("5")

    page.fill("#id_text", "Hello")
    expect(page.get_by_test_id("encoding")).to_have_text("GSM-7")
    expect(page.get_by_test_id("units")).to_have_text("5")
    page.press("#id_text", "End")
    page.keyboard.type("€")
    expect(page.get_by_test_id("units")).to_have_text("7")  # € costs 2 septets
    expect(page.get_by_test_id("encoding")).to_have_text("GSM-7")
    page.keyboard.type("😀")
    expect(page.get_by_test_id("encoding")).to_have_text("UCS-2")
    expect(page.get_by_test_id("units")).to_have_text("8")
    expect(page.get_by_test_id("cost")).to_contain_text("5")

    page.fill("#id_send_at", "24/12/2030 09:30")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(f"{live_server.url}/sms/scheduled/")
    expect(page.get_by_test_id("scheduled-list")).to_contain_text("Hello€😀")
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.numbers == ["+33612345678", "+33698765432"]
    assert list(campaign.groups.all()) == [group]
    assert campaign.scheduled_at.isoformat() == "2030-12-24T08:30:00+00:00"
