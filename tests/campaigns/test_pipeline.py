from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from addressbook.models import BlacklistEntry, Contact, Group, Membership
from billing.models import LedgerEntry
from campaigns import pipeline, tasks
from campaigns.gateways import TemporaryGatewayError, locmem
from campaigns.models import Campaign, Message

from .pipeline_support import expand, fr, fund, make_campaign, make_rates

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(db):
    make_rates()
    make_rates("voice", FR="5.000")


def dispatch():
    tasks.dispatch_due_campaigns()


def test_expansion_dedupes_drops_blacklist_personalises_prices_and_debits(user):
    fund(user, "100")
    group = Group.objects.create(account=user, name="VIP")
    alice = Contact.objects.create(account=user, mobile=fr(1), region="FR", first_name="Alice")
    bob = Contact.objects.create(account=user, mobile="+447911123456", region="GB", first_name="Bob")
    Membership.objects.create(group=group, contact=alice)  # alice twice: contact + group
    Membership.objects.create(group=group, contact=bob)
    BlacklistEntry.objects.create(account=user, number=fr(3))
    campaign = make_campaign(
        user, numbers=[fr(1), fr(2), fr(3), "+596696123456"], contacts=[alice], groups=[group], text="Bonjour $prenom"
    )

    dispatch()

    campaign.refresh_from_db()
    rows = {m.phone: m for m in Message.objects.filter(campaign=campaign)}
    assert set(rows) == {fr(1), fr(2), "+447911123456", "+596696123456"}
    assert rows[fr(1)].text == "Bonjour Alice"
    assert rows[fr(2)].text == "Bonjour "
    assert rows["+447911123456"].credits == Decimal("2.000")
    assert rows["+596696123456"].credits == Decimal("3.000")
    assert (campaign.duplicates_count, campaign.blacklisted_count, campaign.recipients_count) == (2, 1, 4)
    assert campaign.credits_debited == Decimal("7.000")
    assert LedgerEntry.objects.get(account=user, kind="send").amount == Decimal("-7.000")
    assert campaign.status == Campaign.Status.DONE
    assert {m.to for m in locmem.outbox} == set(rows)
    assert all(m.status == Message.Status.SENT and m.carrier_id for m in Message.objects.filter(campaign=campaign))


def test_uncovered_destination_is_invalid_and_not_charged(user):
    fund(user, "10")
    campaign = make_campaign(user, numbers=[fr(1), "+12025550123"])
    dispatch()
    us = Message.objects.get(campaign=campaign, phone="+12025550123")
    assert us.status == Message.Status.INVALID and us.credits == 0 and "US" in us.error
    assert LedgerEntry.objects.get(kind="send").amount == Decimal("-1.000")
    assert [m.to for m in locmem.outbox] == [fr(1)]


def test_insufficient_balance_fails_clearly_debits_nothing_and_emails(user, django_capture_on_commit_callbacks):
    fund(user, "1")
    campaign = make_campaign(user, numbers=[fr(1), fr(2)])
    with django_capture_on_commit_callbacks(execute=True):
        dispatch()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert "Insufficient credits" in campaign.failure_reason
    assert not Message.objects.filter(campaign=campaign).exists()
    assert not LedgerEntry.objects.filter(kind="send").exists()
    user.refresh_from_db()
    assert user.credit_balance == Decimal("1.000")
    assert len(mail.outbox) == 1 and user.email in mail.outbox[0].to


def test_future_and_blocked_campaigns_do_not_leave_until_due_and_unblocked(user, other_user):
    fund(user)
    fund(other_user)
    later = make_campaign(user, numbers=[fr(1)], scheduled_at=timezone.now() + timezone.timedelta(hours=1))
    other_user.blocked_at = timezone.now()
    other_user.save(update_fields=["blocked_at"])
    blocked = make_campaign(other_user, numbers=[fr(2)])
    dispatch()
    later.refresh_from_db()
    blocked.refresh_from_db()
    assert later.status == blocked.status == Campaign.Status.SCHEDULED
    other_user.blocked_at = None
    other_user.save(update_fields=["blocked_at"])
    dispatch()
    blocked.refresh_from_db()
    assert blocked.status == Campaign.Status.DONE


def test_rejected_messages_are_refunded_once(user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [fr(2)]}}
    }
    fund(user, "10")
    campaign = make_campaign(user, numbers=[fr(1), fr(2)])
    dispatch()
    rejected = Message.objects.get(campaign=campaign, phone=fr(2))
    assert rejected.status == Message.Status.REJECTED
    refund = LedgerEntry.objects.get(kind="refund")
    assert refund.amount == Decimal("1.000")
    campaign.refresh_from_db()
    assert campaign.credits_debited == Decimal("1.000")
    user.refresh_from_db()
    assert user.credit_balance == Decimal("9.000")
    # Recording the same rejection again (a replayed result) refunds nothing more.
    from campaigns.gateways import SendResult

    pipeline.messages_record_results(
        gateway_alias="default", results=[SendResult(ref=str(rejected.pk), accepted=False, error="x")]
    )
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


def test_batches_are_id_ranges_of_500(user):
    fund(user, "2000")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 1201)], status="dispatching")
    batches = expand(campaign)
    assert batches == list(pipeline.campaign_batches(campaign_id=campaign.pk))
    assert [Message.objects.filter(id__range=b).count() for b in batches] == [500, 500, 200]


def test_submit_claims_once_so_a_redelivered_task_sends_nothing_twice(user):
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1), fr(2)], status="dispatching")
    [(first, last)] = expand(campaign)
    assert pipeline.messages_submit(campaign_id=campaign.pk, first_id=first, last_id=last) == 2
    assert pipeline.messages_submit(campaign_id=campaign.pk, first_id=first, last_id=last) == 0
    assert len(locmem.outbox) == 2


def test_stale_claims_are_requeued_and_resubmitted_exactly_once(user, settings):
    settings.SMS_SUBMIT_LEASE_SECONDS = 60
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1), fr(2)], status="dispatching")
    [(first, last)] = expand(campaign)
    # A worker claimed the batch and died before recording anything.
    import uuid

    pipeline.messages_claim(campaign_id=campaign.pk, first_id=first, last_id=last, token=uuid.uuid4())
    assert pipeline.messages_requeue_stale() == []  # still within the lease
    ranges = pipeline.messages_requeue_stale(now=timezone.now() + timezone.timedelta(seconds=61))
    assert ranges == [(campaign.pk, first, last)]
    tasks.submit_batch(*ranges[0])
    assert sorted(m.to for m in locmem.outbox) == [fr(1), fr(2)]
    assert Message.objects.filter(campaign=campaign, status=Message.Status.SENT).count() == 2


@pytest.fixture
def eager_retries():
    """Eager tasks re-run a retry in place only when exceptions do not propagate (Celery's apply)."""
    from smsplatform.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


class FlakyGateway(locmem.Gateway):
    calls = 0

    def send_messages(self, messages):
        type(self).calls += 1
        if type(self).calls <= 2:
            raise TemporaryGatewayError("carrier throttled")
        return super().send_messages(messages)


def test_transient_errors_retry_with_backoff_then_send(user, settings, eager_retries):
    settings.SMS_GATEWAYS = {"default": {"BACKEND": f"{__name__}.FlakyGateway", "OPTIONS": {}}}
    FlakyGateway.calls = 0
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1)])
    dispatch()
    assert FlakyGateway.calls == 3
    assert Message.objects.get(campaign=campaign).status == Message.Status.SENT
    assert Message.objects.get(campaign=campaign).attempts == 3
    assert len(locmem.outbox) == 1
    assert [tasks.retry_countdown(n) for n in range(10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_retries_exhausted_fail_and_refund(user, settings, eager_retries):
    settings.SMS_GATEWAYS = {"default": {"BACKEND": f"{__name__}.FlakyGateway", "OPTIONS": {}}}
    FlakyGateway.calls = -100
    fund(user, "10")
    campaign = make_campaign(user, numbers=[fr(1)])
    dispatch()
    message = Message.objects.get(campaign=campaign)
    assert message.status == Message.Status.OPERATOR_TEMPORARY
    assert FlakyGateway.calls == -100 + tasks.SUBMIT_MAX_RETRIES + 1
    assert LedgerEntry.objects.get(kind="refund").amount == Decimal("1.000")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_voice_refused_clearly_by_a_gateway_without_voice(user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"SUPPORTS_VOICE": False}}
    }
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1)], kind="voice")
    dispatch()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert "cannot send voice" in campaign.failure_reason
    assert not LedgerEntry.objects.filter(kind="send").exists()


def test_voice_goes_through_the_same_pipeline(user):
    fund(user)
    make_campaign(user, numbers=[fr(1)], kind="voice")
    dispatch()
    assert [m.kind for m in locmem.outbox] == ["voice"]
    assert LedgerEntry.objects.get(kind="send").amount == Decimal("-5.000")


def test_dispatch_query_count_does_not_grow_with_recipients(user, django_assert_max_num_queries):
    fund(user, "5000")
    contacts = Contact.objects.bulk_create(
        [Contact(account=user, mobile=fr(i), region="FR", first_name=f"C{i}") for i in range(1, 301)]
    )
    make_campaign(user, contacts=contacts, numbers=[fr(i) for i in range(301, 601)], text="Hi $prenom")
    # A dozen queries per chunk written (5,000 recipients, the first one 500) and a handful per
    # gateway call of 100 messages; a query per recipient would be 600+.
    with django_assert_max_num_queries(120):
        dispatch()
    assert len(locmem.outbox) == 600


def test_error_numbers_are_deleted_from_the_address_book_of_that_account_only(user, other_user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [fr(2)]}}
    }
    fund(user)
    mine = [Contact.objects.create(account=user, mobile=fr(i), region="FR") for i in (1, 2)]
    theirs = Contact.objects.create(account=other_user, mobile=fr(2), region="FR")
    campaign = make_campaign(user, contacts=mine)
    dispatch()
    assert pipeline.campaign_error_contacts_delete(campaign_id=campaign.pk, account_id=user.pk) == 1
    assert list(Contact.objects.filter(account=user).values_list("mobile", flat=True)) == [fr(1)]
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_texts_with_tabs_newlines_and_backslashes_survive_the_bulk_insert(user):
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1)], text="Line 1\nTab\there \\o/ $prenom\r\nend")
    tasks.dispatch_due_campaigns()
    assert Message.objects.get(campaign=campaign).text == "Line 1\nTab\there \\o/ \r\nend"


# --- reserve, write in chunks, settle (first messages leave while the rest is written) ------------


def test_first_batch_is_enqueued_before_the_rest_is_written_with_the_cost_reserved(user):
    fund(user, "2000")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 1201)], status="dispatching")
    seen = []

    def enqueue(first, last):
        user.refresh_from_db()
        status = Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)
        seen.append((first, last, Message.objects.filter(campaign=campaign).count(), status, user.credit_reserved))

    assert pipeline.campaign_expand(campaign_id=campaign.pk, enqueue=enqueue)
    # The first chunk is one batch: it is enqueued while the other 700 are not written yet.
    first_id, last_id, written, status, reserved = seen[0]
    assert (written, status, reserved) == (500, Campaign.Status.DISPATCHING, Decimal("1200"))
    assert len(seen) == 3 and seen[-1][3] == Campaign.Status.SENDING  # the last, smaller batch after settling
    campaign.refresh_from_db()
    user.refresh_from_db()
    assert (campaign.status, campaign.credits_reserved, campaign.credits_debited) == ("sending", 0, 1200)
    assert (user.credit_balance, user.credit_reserved) == (Decimal("800"), 0)
    assert LedgerEntry.objects.filter(kind="send").count() == 1


def test_reserved_credits_cannot_be_spent_elsewhere_while_the_campaign_is_written(user):
    from billing.services import InsufficientCredits, ledger_post

    fund(user, "600")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 601)], status="dispatching")
    refused = []

    def enqueue(first, last):
        try:
            ledger_post(account_id=user.pk, kind="adjustment", amount=Decimal("-1"))
        except InsufficientCredits:
            refused.append(first)

    pipeline.campaign_expand(campaign_id=campaign.pk, enqueue=enqueue)
    assert refused, "the reservation must hold the campaign's credits"
    user.refresh_from_db()
    assert user.credit_balance == 0


def test_messages_refused_while_the_campaign_is_written_are_not_charged(user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [fr(7)]}}
    }
    fund(user, "2000")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 1201)], status="dispatching")

    def submit_now(first, last):  # a worker taking the batch at once
        pipeline.messages_submit(campaign_id=campaign.pk, first_id=first, last_id=last)

    pipeline.campaign_expand(campaign_id=campaign.pk, enqueue=submit_now)
    assert Message.objects.get(campaign=campaign, phone=fr(7)).status == Message.Status.REJECTED
    assert LedgerEntry.objects.get(kind="send").amount == Decimal("-1199.000")
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    campaign.refresh_from_db()
    user.refresh_from_db()
    assert campaign.credits_debited == Decimal("1199") and user.credit_balance == Decimal("801")


def test_a_bound_the_account_cannot_cover_falls_back_to_the_exact_cost(user):
    """Dedupe and blacklist are not in the bound: the exact pricing pass lets the campaign go."""
    fund(user, "2")
    alice = Contact.objects.create(account=user, mobile=fr(1), region="FR", first_name="Alice")
    group = Group.objects.create(account=user, name="VIP")
    Membership.objects.create(group=group, contact=alice)
    BlacklistEntry.objects.create(account=user, number=fr(3))
    campaign = make_campaign(
        user, numbers=[fr(1), fr(2), fr(3)], contacts=[alice], groups=[group], text="Hi $prenom", status="dispatching"
    )
    assert pipeline._cost_bound(campaign, pipeline.RateTable.load("sms")) == Decimal("5")
    assert expand(campaign)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipients_count, campaign.credits_debited) == ("sending", 2, Decimal("2"))


def test_recipients_beyond_the_reservation_extend_it_or_get_insufficient_credit(user, monkeypatch):
    """Recipients added after the reservation (simulated by a bound too low): what the account
    can still cover is sent, the rest is marked "insufficient credit" and not charged."""
    fund(user, "3")
    monkeypatch.setattr(pipeline, "_cost_bound", lambda campaign, rates: Decimal("1"))
    campaign = make_campaign(user, numbers=[fr(1), fr(2), fr(3), fr(4)], status="dispatching")
    expand(campaign)
    statuses = dict(Message.objects.filter(campaign=campaign).values_list("phone", "status"))
    assert list(statuses.values()).count(Message.Status.INSUFFICIENT_CREDIT) == 1
    assert Message.objects.filter(campaign=campaign, status=Message.Status.INSUFFICIENT_CREDIT, credits=0).count() == 1
    assert LedgerEntry.objects.get(kind="send").amount == Decimal("-3.000")
    user.refresh_from_db()
    assert (user.credit_balance, user.credit_reserved) == (0, 0)


def test_a_lost_expander_is_resumed_and_every_message_written_and_charged_once(user, monkeypatch):
    fund(user, "2000")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 1201)] + [fr(5)], status="dispatching")
    real_insert = pipeline._insert_messages
    calls = []

    def crash_on_second_chunk(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        real_insert(*args)

    monkeypatch.setattr(pipeline, "_insert_messages", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        expand(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DISPATCHING and campaign.credits_reserved == Decimal("1200")
    assert Message.objects.filter(campaign=campaign).count() == 500
    # While the lease runs, nobody else expands it; past it, housekeeping resumes it.
    assert expand(campaign) == [] and pipeline.campaigns_stuck_dispatching() == []
    later = timezone.now() + pipeline.EXPANSION_LEASE + timezone.timedelta(seconds=1)
    assert pipeline.campaigns_stuck_dispatching(now=later) == [campaign.pk]
    Campaign.objects.filter(pk=campaign.pk).update(expansion_lease_until=timezone.now())
    batches = expand(campaign)

    assert Message.objects.filter(campaign=campaign).count() == 1200
    assert [Message.objects.filter(id__range=b, status=Message.Status.QUEUED).count() for b in batches] == [
        500,
        500,
        200,
    ]  # the chunk the lost worker wrote but never enqueued is enqueued again
    campaign.refresh_from_db()
    user.refresh_from_db()
    assert (campaign.status, campaign.recipients_count, campaign.duplicates_count) == ("sending", 1200, 1)
    assert LedgerEntry.objects.get(kind="send").amount == Decimal("-1200.000")
    assert (user.credit_balance, user.credit_reserved) == (Decimal("800"), 0)


def test_a_dispatched_campaign_whose_expansion_never_started_is_picked_up(user):
    campaign = make_campaign(user, numbers=[fr(1)], status="dispatching")
    Campaign.objects.filter(pk=campaign.pk).update(dispatched_at=timezone.now())
    assert pipeline.campaigns_stuck_dispatching() == []
    later = timezone.now() + pipeline.EXPANSION_LEASE + timezone.timedelta(seconds=1)
    assert pipeline.campaigns_stuck_dispatching(now=later) == [campaign.pk]


@pytest.mark.parametrize("join_rows", [50_000, 0], ids=["audience", "address-book"])
def test_cost_bound_is_never_below_the_exact_cost(user, other_user, monkeypatch, join_rows):
    monkeypatch.setattr(pipeline, "_BOUND_JOIN_ROWS", join_rows)
    names = ["Alice", "François", "Zoë", "", "Jean-Baptiste-Emmanuel"]
    contacts = [
        Contact.objects.create(account=user, mobile=fr(i), region="FR", first_name=names[i % len(names)])
        for i in range(1, 21)
    ] + [
        Contact.objects.create(account=user, mobile=f"+44791112345{i}", region="GB", last_name="Smith")
        for i in range(5)
    ]
    Contact.objects.create(account=other_user, mobile=fr(99), region="MQ", first_name="x" * 90)  # not theirs to count
    group = Group.objects.create(account=user, name="All")
    Membership.objects.bulk_create([Membership(group=group, contact=c) for c in contacts])
    BlacklistEntry.objects.create(account=user, number=fr(2))
    rates = pipeline.RateTable.load("sms")
    for text in ["Promo", "Bonjour $prenom $nom, " + "x" * 120, "Bonjour $prenom, -20% ce week-end"]:
        campaign = make_campaign(
            user, numbers=[fr(1), "+447911999999", "+596696123456"], contacts=contacts[:7], groups=[group], text=text
        )
        exact = sum((chunk.cost for chunk in pipeline._priced_chunks(campaign, rates)), Decimal(0))
        assert pipeline._cost_bound(campaign, rates) >= exact > 0, text


def test_cost_bound_asks_whether_values_are_plain_only_when_it_matters(user):
    rates = pipeline.RateTable.load("sms")
    contacts = [Contact.objects.create(account=user, mobile=fr(i), region="FR", first_name="Guillaume") for i in (1, 2)]
    campaign = make_campaign(user, contacts=contacts, text="a" * 60 + " $prenom")
    # 70 GSM-7 septets (one part) if the names are plain; as UCS-2, 60 + 2 x 9 units would be two parts.
    assert pipeline._cost_bound(campaign, rates) == Decimal("2")
    Contact.objects.filter(pk=contacts[0].pk).update(first_name="Françoise")
    assert pipeline._cost_bound(campaign, rates) == Decimal("4")
