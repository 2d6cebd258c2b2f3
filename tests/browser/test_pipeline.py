import pytest
from playwright.sync_api import expect

from campaigns import tasks
from tests.campaigns.pipeline_support import fr, fund, make_campaign, make_rates

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_follows_a_simulator_campaign_to_received_and_errors(live_server, page, browser_login, user, settings):
    settings.SMS_GATEWAYS = {"default": {"BACKEND": "campaigns.gateways.simulator.Gateway", "OPTIONS": {"DELAY": 0}}}
    make_rates()
    fund(user, "100")
    # Two numbers per final digit: 0 is refused at submit, 9 fails at the handset, others are received.
    numbers = [fr(10 * i + digit, last=digit) for digit in range(10) for i in (1, 2)]
    campaign = make_campaign(user, numbers=numbers, text="Soldes ce week-end")
    browser_login(user)
    page.goto(f"{live_server.url}/sms/campaigns/{campaign.uuid}/report/")
    expect(page.get_by_test_id("report")).to_have_attribute("data-live", "true")

    tasks.dispatch_due_campaigns()  # what beat does every 2 s

    # The page refreshes itself (htmx every 2 s) until nothing is in flight.
    expect(page.get_by_test_id("count-60")).to_have_text("16", timeout=15_000)
    expect(page.get_by_test_id("count-73")).to_have_text("2")
    expect(page.get_by_test_id("count-78")).to_have_text("2")
    expect(page.get_by_test_id("report")).to_have_attribute("data-live", "false", timeout=5_000)

    page.select_option("#id_status", "error")
    page.get_by_test_id("filter").click()
    expect(page.get_by_test_id("recipient")).to_have_count(4)
    expect(page.get_by_test_id("recipient").first).to_contain_text(fr(29, last=9))
