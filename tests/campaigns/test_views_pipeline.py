import pytest
from django.urls import reverse
from django.utils import timezone

from addressbook.models import Contact
from campaigns import tasks
from campaigns.gateways import CarrierEvents, InboundSMS, Receipt, ReceiptStatus
from campaigns.models import GatewayHealth, Message
from campaigns.receipts import apply_carrier_events

from .pipeline_support import fr, fund, make_campaign, make_rates

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [fr(2)]}}
    }
    make_rates()
    fund(user)
    Contact.objects.create(account=user, mobile=fr(2), region="FR")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 80)])
    tasks.dispatch_due_campaigns()
    first = Message.objects.filter(campaign=campaign, phone=fr(1)).get()
    apply_carrier_events(
        gateway_alias="default",
        events=CarrierEvents(
            receipts=[Receipt(first.carrier_id, ReceiptStatus.RECEIVED, timezone.now())],
            inbound=[
                InboundSMS(sender=fr(1), recipient="+33700000000", text="STOP", at=timezone.now(), carrier_id="m1")
            ],
        ),
    )
    return campaign


def test_report_counts_filters_and_paginates(client_logged, campaign, django_assert_num_queries):
    url = reverse("campaigns:report", kwargs={"uuid": campaign.uuid})
    # session, user, campaign, counts, rows: whatever the filter, the page or the campaign's size
    with django_assert_num_queries(5):
        response = client_logged.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-testid="count-60">1<' in content and 'data-testid="count-73">1<' in content
    assert 'data-testid="count-30">77<' in content
    assert content.count('data-testid="recipient"') == 50
    with django_assert_num_queries(5):
        errors = client_logged.get(url, {"status": "error"}).content.decode()
    assert errors.count('data-testid="recipient"') == 1 and fr(2) in errors
    with django_assert_num_queries(5):
        received = client_logged.get(url, {"status": "60"}).content.decode()
    assert received.count('data-testid="recipient"') == 1 and fr(1) in received
    with django_assert_num_queries(4):  # no message has this status: no rows to read
        assert 'data-testid="recipient"' not in client_logged.get(url, {"status": "79"}).content.decode()
    newest = list(Message.objects.filter(campaign=campaign).order_by("-id").values_list("id", flat=True))
    with django_assert_num_queries(5):
        page2 = client_logged.get(url, {"after": newest[49]})
    assert [m.id for m in page2.context["page"].rows] == newest[50:]
    with django_assert_num_queries(5):
        live = client_logged.get(url, {"after": newest[49]}, headers={"HX-Request": "true"})
    assert live.templates[0].name == "campaigns/report_live.html"


def test_report_polls_while_messages_are_in_flight_and_htmx_gets_the_fragment(client_logged, campaign):
    url = reverse("campaigns:report", kwargs={"uuid": campaign.uuid})
    response = client_logged.get(url, headers={"HX-Request": "true"})
    assert response.templates[0].name == "campaigns/report_live.html"
    assert 'hx-trigger="every 2s"' in response.content.decode()


def test_other_account_gets_404(client, other_user, campaign):
    client.force_login(other_user)
    assert client.get(reverse("campaigns:report", kwargs={"uuid": campaign.uuid})).status_code == 404
    url = reverse("campaigns:report_delete_error_numbers", kwargs={"uuid": campaign.uuid})
    assert client.post(url).status_code == 404
    assert Contact.objects.filter(mobile=fr(2)).exists()


def test_delete_error_numbers(client_logged, campaign):
    url = reverse("campaigns:report_delete_error_numbers", kwargs={"uuid": campaign.uuid})
    response = client_logged.post(url)
    assert response.status_code == 302
    assert not Contact.objects.filter(mobile=fr(2)).exists()


def test_replies_page_lists_this_accounts_replies_only(
    client, user, other_user, campaign, django_assert_max_num_queries
):
    client.force_login(user)
    with django_assert_max_num_queries(6):
        content = client.get(reverse("campaigns:replies")).content.decode()
    assert "STOP" in content and "number blacklisted" in content
    assert reverse("campaigns:report", kwargs={"uuid": campaign.uuid}) in content
    client.force_login(other_user)
    assert 'data-testid="reply"' not in client.get(reverse("campaigns:replies")).content.decode()


def test_admin_pages(admin_client, campaign):
    assert GatewayHealth.objects.get(alias="default").submitted == 78
    for name in ("campaign", "message", "inbound", "gatewayhealth"):
        response = admin_client.get(reverse(f"admin:campaigns_{name}_changelist"))
        assert response.status_code == 200, name
    response = admin_client.get(reverse("admin:campaigns_message_changelist"), {"status__exact": 73})
    assert fr(2) in response.content.decode()


def test_report_shows_progress_towards_final_statuses(client_logged, campaign):
    content = client_logged.get(reverse("campaigns:report", kwargs={"uuid": campaign.uuid})).content.decode()
    # 1 received + 1 rejected of 79 messages are final; 77 are still "sent".
    assert 'max="79" value="2"' in content
