import csv
import io
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from openpyxl import load_workbook

from campaigns.models import Campaign, Template
from tests.factories import CampaignFactory, ContactFactory, GroupFactory, MessageFactory, RateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The live summary caches recipient counts; ids can repeat across tests on SQLite.
    cache.clear()


@pytest.fixture
def funded(user):
    RateFactory(kind="sms", region="FR", credits_per_part=Decimal("1"))
    user.credit_balance = Decimal("50")
    user.save(update_fields=["credit_balance"])
    return user


def summary(client, **data):
    payload = {"kind": "sms", "recipients": "0612345678", "text": "", **data}
    response = client.post(reverse("campaigns:summary"), payload)
    assert response.status_code == 200
    return response.context


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts", "remaining"),
    [
        ("a" * 160, "GSM-7", 160, 1, 0),
        ("a" * 150 + "€", "GSM-7", 152, 1, 8),
        ("a" * 159 + "€", "GSM-7", 160, 1, 0),  # after the € -> E rule (SND-10)
        ("Salut 😀", "UCS-2", 8, 1, 62),
        ("ÊTRE", "UCS-2", 4, 1, 66),
        ("Élan", "GSM-7", 4, 1, 156),
    ],
)
def test_live_counter_on_tricky_texts(client_logged, funded, text, encoding, units, parts, remaining):
    info = summary(client_logged, text=text)["info"]
    assert (info.encoding, info.units, info.parts, info.remaining) == (encoding, units, parts, remaining)


def test_summary_reports_euro_rule_cost_invalid_entries_and_counts(client_logged, funded):
    group = GroupFactory(account=funded)
    group.contacts.add(ContactFactory(account=funded, mobile="+33612345678"), ContactFactory(account=funded))
    context = summary(
        client_logged, text="a" * 159 + "€", recipients="0612345678, 06 12 34 56 79, nope", groups=group.pk
    )
    assert context["euro_replaced"] and context["info"].parts == 1
    assert context["estimate"].recipients == 3 and context["estimate"].duplicates == 1
    assert context["estimate"].credits == Decimal("3")
    assert context["invalid"][0][0] == "nope"


def test_summary_reprices_cached_counts_while_a_send_recounts(client_logged, funded):
    group = GroupFactory(account=funded)
    group.contacts.add(ContactFactory(account=funded))
    assert summary(client_logged, text="Hi", recipients="", groups=group.pk)["estimate"].credits == Decimal("1")
    group.contacts.add(ContactFactory(account=funded))
    long_text = summary(client_logged, text="x" * 200, recipients="", groups=group.pk)
    assert long_text["estimate"].credits == Decimal("2")  # counts from the cache, parts from the new text
    response = post_new(client_logged, recipients="", groups=group.pk, text="Hi", send_at="24/12/2030 09:30")
    notices = [str(message) for message in client_logged.get(response["Location"]).context["messages"]]
    assert any("SMS to 2 recipient(s)" in notice for notice in notices)


def test_summary_personalises_the_preview(client_logged, funded):
    contact = ContactFactory(account=funded, first_name="Zoé", last_name="Roux", company="ACME")
    context = summary(client_logged, text="Bonjour $prenom $nom de $societe", recipients="", contacts=contact.pk)
    assert context["estimate"].preview == [(contact.mobile, "Bonjour Zoé Roux de ACME")]


def test_summary_warns_about_missing_opt_out(client_logged, funded):
    assert summary(client_logged, text="Promo", sender="SHOP")["missing_opt_out"]
    assert not summary(client_logged, text="Promo", sender="SHOP", append_stop="on")["missing_opt_out"]
    assert not summary(client_logged, text="Hello")["missing_opt_out"]


def post_new(client, **data):
    payload = {"kind": "sms", "recipients": "0612345678", "text": "Hello", **data}
    return client.post(reverse("campaigns:new"), payload)


def test_send_now_creates_a_campaign_and_shows_it(client_logged, funded):
    response = post_new(client_logged)
    campaign = Campaign.objects.get()
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.uuid])
    assert campaign.account == funded and campaign.numbers == ["+33612345678"]


def test_scheduled_list_shows_dates_in_the_account_time_zone(client_logged, funded):
    funded.time_zone = "Asia/Tokyo"
    funded.save(update_fields=["time_zone"])
    CampaignFactory(account=funded, scheduled_at="2030-06-01T08:00Z")
    assert "01/06/2030 17:00" in client_logged.get(reverse("campaigns:scheduled")).content.decode()


def test_schedule_in_the_account_time_zone(client_logged, funded):
    funded.time_zone = "America/New_York"
    funded.save(update_fields=["time_zone"])
    response = post_new(client_logged, send_at="24/12/2030 09:30")
    assert response.status_code == 302 and response["Location"] == reverse("campaigns:scheduled")
    assert Campaign.objects.get().scheduled_at.isoformat() == "2030-12-24T14:30:00+00:00"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"recipients": "0612345678, 12"}, "“12”"),
        ({"recipients": ""}, "Add at least one recipient"),
        ({"text": ""}, "required"),
        ({"sender": "AB"}, "3 to 11"),
        ({"sender": "Société"}, "3 to 11"),
        ({"kind": "voice", "sender": "SHOP"}, "only available for Pro SMS"),
        ({"send_at": "2030-24-12 10:00"}, "dd/mm/yyyy"),
        ({"send_at": "01/01/2020 10:00"}, "in the past"),
        ({"is_marketing": "on", "sender": "SHOP"}, "opt out"),
        ({"text": "x" * 153 * 60}, "balance"),
        ({"groups": "999999"}, "no longer exist"),
    ],
)
def test_every_refusal_is_explained_and_saves_nothing(client_logged, funded, data, error):
    response = post_new(client_logged, **data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Campaign.objects.exists()


def test_another_accounts_group_cannot_be_used(client_logged, funded, other_user):
    foreign = GroupFactory(account=other_user)
    response = post_new(client_logged, groups=foreign.pk)
    assert "no longer exist" in response.content.decode()
    assert not Campaign.objects.exists()


def test_unconfirmed_account_cannot_send(client_logged, funded):
    funded.email_confirmed_at = None
    funded.save()
    assert "confirm your email" in post_new(client_logged).content.decode()
    assert not Campaign.objects.exists()


def test_picker_searches_own_contacts_and_groups_with_keyset_pages(
    client_logged, funded, other_user, django_assert_max_num_queries
):
    GroupFactory(account=funded, name="Clients VIP")
    GroupFactory(account=other_user, name="Clients other")
    for i in range(20):
        ContactFactory(account=funded, last_name=f"Martin{i}")
    ContactFactory(account=other_user, last_name="Martin-foreign")
    response = client_logged.get(reverse("campaigns:picker"), {"q": "Clients"})
    assert [g.name for g in response.context["groups"]] == ["Clients VIP"]
    with django_assert_max_num_queries(4):  # session, user, groups, contacts
        first = client_logged.get(reverse("campaigns:picker"), {"q": "martin"})
    assert len(first.context["contacts"]) == 15 and first.context["next_before"]
    second = client_logged.get(reverse("campaigns:picker"), {"q": "martin", "before": first.context["next_before"]})
    names = {c.last_name for c in first.context["contacts"]} | {c.last_name for c in second.context["contacts"]}
    assert len(names) == 20 and "Martin-foreign" not in names


def test_picker_finds_contacts_by_the_start_of_their_words(client_logged, funded, other_user):
    dupont = ContactFactory(account=funded, mobile="+33612345678", last_name="Dupont", email="jean@acme.com")
    dupre = ContactFactory(account=funded, mobile="+33698765432", last_name="Martin", company="Boulangerie Dupré")
    ContactFactory(account=other_user, mobile="+33612345679", last_name="Dupont")

    def found(query):
        response = client_logged.get(reverse("campaigns:picker"), {"q": query})
        return {contact.id for contact in response.context["contacts"]}

    assert found("dup") == {dupont.id, dupre.id}
    assert found("DUPRÉ") == found("dupre") == {dupre.id}
    assert found("acme") == {dupont.id}
    assert found("paul dup") == {dupont.id, dupre.id}
    assert found("pont") == found("artin") == set()  # the middle of a word does not match
    assert found("0612 34") == {dupont.id}  # a piece of the number, as before


def test_my_sms_lists_are_scoped_and_query_bounded(client_logged, funded, other_user, django_assert_max_num_queries):
    for _ in range(30):
        CampaignFactory(account=funded)
        CampaignFactory(account=funded, status="done")
    CampaignFactory(account=funded, status="done", hidden_at="2026-01-01T00:00Z")
    CampaignFactory(account=other_user, status="done")
    with django_assert_max_num_queries(6):
        response = client_logged.get(reverse("campaigns:sent"))
    page = response.context["page"]
    assert len(page.items) == 25 and page.has_next
    assert all(c.account_id == funded.pk and c.hidden_at is None for c in page.items)
    with django_assert_max_num_queries(6):
        following = client_logged.get(reverse("campaigns:sent") + "?" + page.next_query)
    assert len(following.context["page"].items) == 5 and following.context["page"].has_previous
    with django_assert_max_num_queries(6):
        scheduled = client_logged.get(reverse("campaigns:scheduled"))
    assert all(c.status == "scheduled" for c in scheduled.context["page"].items)


@pytest.mark.parametrize("name", ["detail", "edit"])
def test_other_accounts_campaign_is_404(client_logged, other_user, name):
    foreign = CampaignFactory(account=other_user)
    assert client_logged.get(reverse(f"campaigns:{name}", args=[foreign.uuid])).status_code == 404


@pytest.mark.parametrize("name", ["copy", "delete", "hide"])
def test_other_accounts_campaign_actions_are_404(client_logged, other_user, name):
    foreign = CampaignFactory(account=other_user)
    assert client_logged.post(reverse(f"campaigns:{name}", args=[foreign.uuid])).status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "scheduled" and foreign.hidden_at is None
    assert Campaign.objects.count() == 1


def test_resend_of_another_accounts_campaign_is_404(client_logged, other_user):
    foreign = CampaignFactory(account=other_user, status="done")
    assert client_logged.get(reverse("campaigns:new"), {"from": foreign.uuid}).status_code == 404


def test_resend_prefills_the_new_sms_form(client_logged, funded):
    group = GroupFactory(account=funded)
    sent = CampaignFactory(account=funded, status="done", text="Again", sender="SHOP")
    sent.groups.add(group)
    response = client_logged.get(reverse("campaigns:new"), {"from": sent.uuid})
    form = response.context["form"]
    assert form.initial["text"] == "Again" and form.initial["sender"] == "SHOP"
    assert form.initial["recipients"] == "+33612345678" and response.context["chosen_groups"] == [group]


def test_edit_shows_the_date_in_the_account_time_zone_and_saves(client_logged, funded):
    campaign = CampaignFactory(account=funded, scheduled_at="2030-06-01T08:00Z")
    response = client_logged.get(reverse("campaigns:edit", args=[campaign.uuid]))
    assert response.context["form"].initial["send_at"] == "01/06/2030 10:00"
    response = client_logged.post(
        reverse("campaigns:edit", args=[campaign.uuid]),
        {"kind": "sms", "recipients": "0612345679", "text": "Changed", "send_at": "01/06/2030 10:00"},
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.text == "Changed" and campaign.numbers == ["+33612345679"]


def test_delete_and_hide_from_the_lists(client_logged, funded):
    scheduled = CampaignFactory(account=funded)
    sent = CampaignFactory(account=funded, status="done")
    client_logged.post(reverse("campaigns:delete", args=[scheduled.uuid]))
    client_logged.post(reverse("campaigns:hide", args=[sent.uuid]))
    scheduled.refresh_from_db()
    sent.refresh_from_db()
    assert scheduled.status == "cancelled" and sent.hidden_at is not None
    assert not client_logged.get(reverse("campaigns:sent")).context["page"].items


def test_detail_counts_messages_per_status(client_logged, funded, django_assert_num_queries):
    campaign = CampaignFactory(account=funded, status="done")
    MessageFactory.create_batch(2, campaign=campaign, status=60)
    MessageFactory(campaign=campaign, status=70)
    with django_assert_num_queries(6):  # session, user, campaign, counts, contacts, groups
        counts = client_logged.get(reverse("campaigns:detail", args=[campaign.uuid])).context["counts"]
    assert {row.label: row.count for row in counts.rows} == {"Received": 2, "Invalid recipient": 1}


def test_export_escapes_formulas_and_is_scoped(client_logged, funded, other_user):
    campaign = CampaignFactory(account=funded, status="done", text='=HYPERLINK("http://evil")')
    MessageFactory(campaign=campaign, text=campaign.text)
    MessageFactory(campaign=CampaignFactory(account=other_user, status="done", text="secret"))
    response = client_logged.get(reverse("campaigns:export", args=["csv"]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Date", "Number", "Text", "Parts", "Credits", "Status"]
    assert len(rows) == 2 and rows[1][2].startswith("'=HYPERLINK")
    response = client_logged.get(reverse("campaigns:export", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 2 and values[1][2].startswith("'=")
    assert client_logged.get(reverse("campaigns:export", args=["pdf"])).status_code == 404


def test_templates_crud_scoped_and_usable(client_logged, funded, other_user):
    client_logged.post(reverse("campaigns:template_new"), {"name": "Promo", "text": "Hello $prenom"})
    template = Template.objects.get(account=funded)
    client_logged.post(reverse("campaigns:template_edit", args=[template.pk]), {"name": "Promo", "text": "Hi $prenom"})
    template.refresh_from_db()
    assert template.text == "Hi $prenom"
    response = client_logged.get(reverse("campaigns:new"), {"template": template.pk})
    assert response.context["form"].initial["text"] == "Hi $prenom"
    assert "Promo" in client_logged.get(reverse("campaigns:templates")).content.decode()
    foreign = Template.objects.create(account=other_user, name="Theirs", text="x")
    assert client_logged.get(reverse("campaigns:template_edit", args=[foreign.pk])).status_code == 404
    assert client_logged.post(reverse("campaigns:template_delete", args=[foreign.pk])).status_code == 404
    assert client_logged.get(reverse("campaigns:new"), {"template": foreign.pk}).status_code == 404
    client_logged.post(reverse("campaigns:template_delete", args=[template.pk]))
    assert not Template.objects.filter(account=funded).exists() and Template.objects.filter(pk=foreign.pk).exists()


def test_pages_render(client_logged, funded):
    for name in ("new", "scheduled", "sent", "templates", "template_new"):
        assert client_logged.get(reverse(f"campaigns:{name}")).status_code == 200
