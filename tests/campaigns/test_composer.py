import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from addressbook.models import BlacklistEntry
from billing.models import Rate
from campaigns import composer
from campaigns.composer import CampaignLocked, CampaignRefused, Draft, parse_numbers, recipients_estimate
from campaigns.models import Campaign
from tests.factories import CampaignFactory, ContactFactory, GroupFactory, RateFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)  # a Tuesday, 11:00 in Paris


@pytest.fixture
def rich_user(user):
    RateFactory(kind="sms", region="FR", credits_per_part=Decimal("1"))
    RateFactory(kind="sms", region="GB", credits_per_part=Decimal("2"))
    RateFactory(kind="voice", region="FR", credits_per_part=Decimal("3"))
    user.credit_balance = Decimal("100")
    user.save(update_fields=["credit_balance"])
    return user


def numbers(raw, kind="sms"):
    return parse_numbers(raw=raw, default_region="FR", kind=kind)


def test_parse_numbers_accepts_every_snd4_format_and_reports_invalid_entries():
    parsed = numbers("06 12 34 56 78, +33 6 12 34 56 79; 0033612345680\n33612345681 +44 7400 123456, hello, 0123")
    assert parsed.numbers == ("+33612345678", "+33612345679", "+33612345680", "+33612345681", "+447400123456")
    assert parsed.regions["+447400123456"] == "GB"
    assert [entry for entry, _ in parsed.invalid] == ["hello", "0123"]
    assert all(reason for _, reason in parsed.invalid)


def test_landlines_only_for_voice():
    assert numbers("01 42 68 53 00").invalid
    assert numbers("01 42 68 53 00", kind="voice").numbers == ("+33142685300",)


@pytest.mark.parametrize("text", ["Hi", "Hi $prenom"])  # the SQL path and the per-contact path
def test_estimate_dedupes_across_numbers_contacts_and_groups_and_drops_blacklisted(rich_user, text):
    group = GroupFactory(account=rich_user)
    in_group = [ContactFactory(account=rich_user, mobile=f"+3361111111{i}") for i in range(3)]
    group.contacts.add(*in_group)
    picked = ContactFactory(account=rich_user, mobile="+33611111110")  # another contact, same number
    also_in_group = in_group[1]  # picked directly and through the group: one recipient, no duplicate
    BlacklistEntry.objects.create(account=rich_user, number="+33611111112")
    parsed = numbers("0611111111, 06 11 11 11 11, +447400123456")
    estimate = recipients_estimate(
        account_id=rich_user.pk,
        kind="sms",
        text=text,
        numbers=parsed,
        contact_ids=[picked.pk, also_in_group.pk],
        group_ids=[group.pk],
    )
    # 0611111111 typed twice and in the group; 0611111110 held by two contacts.
    assert (estimate.recipients, estimate.duplicates, estimate.blacklisted) == (3, 3, 1)
    assert estimate.credits == Decimal("4")  # 2 FR x 1 + 1 GB x 2


def test_estimate_prices_each_personalised_text(rich_user):
    short = ContactFactory(account=rich_user, last_name="Li")
    long = ContactFactory(account=rich_user, last_name="X" * 90, company="Y" * 100)
    estimate = recipients_estimate(
        account_id=rich_user.pk,
        kind="sms",
        text="Bonjour $nom $societe",
        numbers=numbers("0612345678"),
        contact_ids=[short.pk, long.pk],
    )
    assert estimate.recipients == 3
    assert estimate.credits == Decimal("4")  # 1 + 1 + 2 parts
    assert estimate.longest.parts == 2
    assert estimate.preview[0] == ("+33612345678", "Bonjour  ")  # typed numbers have empty fields
    assert (short.mobile, "Bonjour Li ") in estimate.preview[1:]


def test_estimate_of_other_accounts_contacts_is_empty(rich_user, other_user):
    foreign = ContactFactory(account=other_user)
    estimate = recipients_estimate(
        account_id=rich_user.pk, kind="sms", text="Hi", numbers=numbers(""), contact_ids=[foreign.pk]
    )
    assert estimate.recipients == 0


def draft(**overrides):
    values = {"kind": "sms", "text": "Hello", "numbers": numbers("0612345678")}
    values.update(overrides)
    return Draft(**values)


def test_create_schedules_now_and_never_debits(rich_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        campaign, prepared = composer.campaign_create(user=rich_user, draft=draft(), now=NOW)
    assert len(callbacks) == 1  # the dispatcher nudge, after commit
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == NOW
    assert campaign.numbers == ["+33612345678"]
    assert prepared.estimate.credits == Decimal("1")
    rich_user.refresh_from_db()
    assert rich_user.credit_balance == Decimal("100")
    assert not campaign.messages.exists()


def test_euro_rule_applies_when_it_saves_a_part(rich_user):
    campaign, prepared = composer.campaign_create(user=rich_user, draft=draft(text="a" * 159 + "€"), now=NOW)
    assert prepared.euro_replaced
    assert campaign.text == "a" * 159 + "E"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"send_at": NOW - dt.timedelta(minutes=1)}, "past"),
        ({"numbers": numbers("")}, "No recipient"),
        ({"numbers": numbers("+1 212 555 0100")}, "do not send"),
        ({"text": "x" * 200 * 153}, "balance"),
        ({"is_marketing": True, "sender": "SHOP"}, "opt out"),
        ({"is_marketing": True, "kind": "voice"}, "opt out"),
        ({"text": "   "}, "empty"),
    ],
)
def test_refusals_save_nothing(rich_user, overrides, message):
    Rate.objects.filter(region="US").delete()  # an uncovered destination
    with pytest.raises(CampaignRefused, match=message):
        composer.campaign_create(user=rich_user, draft=draft(**overrides), now=NOW)
    assert not Campaign.objects.exists()


def test_unconfirmed_or_blocked_account_is_refused(rich_user):
    rich_user.email_confirmed_at = None
    rich_user.save()
    with pytest.raises(CampaignRefused, match="confirm"):
        composer.campaign_create(user=rich_user, draft=draft(), now=NOW)
    rich_user.email_confirmed_at = NOW
    rich_user.blocked_at = NOW
    rich_user.save()
    with pytest.raises(CampaignRefused, match="blocked"):
        composer.campaign_create(user=rich_user, draft=draft(), now=NOW)


def test_marketing_with_opt_out_means_or_stop_mention_is_accepted(rich_user):
    campaign, _ = composer.campaign_create(
        user=rich_user, draft=draft(is_marketing=True, sender="SHOP", text="Promo -20% shop.example.com"), now=NOW
    )
    assert campaign.sender == "SHOP"
    campaign, _ = composer.campaign_create(
        user=rich_user, draft=draft(is_marketing=True, sender="SHOP", text="Promo", append_stop=True), now=NOW
    )
    assert campaign.text.startswith("Promo\nSTOP")
    # Non-marketing: a warning in the form only.
    composer.campaign_create(user=rich_user, draft=draft(sender="SHOP", text="Your parcel is ready"), now=NOW)


def test_marketing_at_night_before_a_holiday_is_deferred(rich_user):
    christmas_eve_night = dt.datetime(2026, 12, 24, 21, 0, tzinfo=dt.UTC)
    campaign, prepared = composer.campaign_create(
        user=rich_user,
        draft=draft(is_marketing=True, send_at=christmas_eve_night),
        now=christmas_eve_night - dt.timedelta(hours=1),
    )
    assert prepared.deferred_from == christmas_eve_night
    assert campaign.scheduled_at == dt.datetime(2026, 12, 26, 7, 0, tzinfo=dt.UTC)


def test_non_marketing_is_not_deferred(rich_user):
    sunday = dt.datetime(2026, 11, 29, 22, 0, tzinfo=dt.UTC)
    campaign, prepared = composer.campaign_create(user=rich_user, draft=draft(send_at=sunday), now=NOW)
    assert campaign.scheduled_at == sunday and prepared.deferred_from is None


def test_update_changes_a_scheduled_campaign(rich_user):
    campaign, _ = composer.campaign_create(user=rich_user, draft=draft(send_at=NOW + dt.timedelta(days=1)), now=NOW)
    group = GroupFactory(account=rich_user)
    group.contacts.add(ContactFactory(account=rich_user))
    later = NOW + dt.timedelta(days=2)
    composer.campaign_update(
        user=rich_user, campaign=campaign, draft=draft(text="New", send_at=later, group_ids=(group.pk,)), now=NOW
    )
    campaign.refresh_from_db()
    assert (campaign.text, campaign.scheduled_at) == ("New", later)
    assert list(campaign.groups.all()) == [group]


def test_update_and_delete_are_refused_once_claimed(rich_user):
    campaign = CampaignFactory(account=rich_user)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DISPATCHING)
    with pytest.raises(CampaignLocked):
        composer.campaign_update(user=rich_user, campaign=campaign, draft=draft(), now=NOW)
    with pytest.raises(CampaignLocked):
        composer.campaign_delete(user=rich_user, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DISPATCHING and campaign.text == "Hello"


def test_delete_cancels_a_scheduled_campaign(rich_user):
    campaign = CampaignFactory(account=rich_user)
    composer.campaign_delete(user=rich_user, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED


def test_copy_keeps_the_original_and_sends_at_once_when_past(rich_user):
    group = GroupFactory(account=rich_user)
    group.contacts.add(ContactFactory(account=rich_user))
    original = CampaignFactory(account=rich_user, scheduled_at=NOW - dt.timedelta(days=1), status="done")
    original.groups.add(group)
    copy, _ = composer.campaign_copy(user=rich_user, campaign=original, now=NOW)
    assert copy.pk != original.pk and copy.copied_from == original
    assert copy.scheduled_at == NOW and copy.status == Campaign.Status.SCHEDULED
    assert list(copy.groups.all()) == [group] and copy.numbers == original.numbers
    original.refresh_from_db()
    assert original.status == "done"
    future = CampaignFactory(account=rich_user, scheduled_at=NOW + dt.timedelta(days=3))
    assert composer.campaign_copy(user=rich_user, campaign=future, now=NOW)[0].scheduled_at == future.scheduled_at


def test_hide_keeps_the_campaign_but_only_for_sent_ones(rich_user):
    sent = CampaignFactory(account=rich_user, status="done")
    scheduled = CampaignFactory(account=rich_user)
    composer.campaign_hide(user=rich_user, campaign=sent)
    composer.campaign_hide(user=rich_user, campaign=scheduled)
    sent.refresh_from_db()
    scheduled.refresh_from_db()
    assert sent.hidden_at is not None and scheduled.hidden_at is None
    assert sent.hidden_at <= timezone.now()


def test_update_refuses_a_new_past_date_but_keeps_an_unchanged_one(rich_user):
    campaign = CampaignFactory(account=rich_user, scheduled_at=NOW + dt.timedelta(minutes=5))
    later_now = NOW + dt.timedelta(minutes=10)  # the date passed while the user was editing
    with pytest.raises(CampaignRefused, match="past"):
        composer.campaign_update(
            user=rich_user, campaign=campaign, draft=draft(send_at=NOW - dt.timedelta(days=1)), now=later_now
        )
    composer.campaign_update(
        user=rich_user, campaign=campaign, draft=draft(text="Edited", send_at=campaign.scheduled_at), now=later_now
    )
    campaign.refresh_from_db()
    assert campaign.text == "Edited" and campaign.scheduled_at == NOW + dt.timedelta(minutes=5)


def test_live_estimate_of_personalised_texts_can_stop_early_and_says_so(rich_user):
    group = GroupFactory(account=rich_user)
    group.contacts.add(*ContactFactory.create_batch(5, account=rich_user))
    kwargs = {
        "account_id": rich_user.pk,
        "kind": "sms",
        "text": "Hi $nom",
        "numbers": numbers(""),
        "group_ids": [group.pk],
    }
    partial = recipients_estimate(**kwargs, personalised_limit=3)
    assert partial.partial and partial.recipients == 3
    full = recipients_estimate(**kwargs)
    assert not full.partial and full.recipients == 5
