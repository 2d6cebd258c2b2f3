"""Per-campaign message counts kept by triggers (``MessageCount``) and their squash (SND-16)."""

import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Sum
from django.utils import timezone

from campaigns import pipeline, selectors, tasks
from campaigns.counts import message_counts_squash
from campaigns.gateways import CarrierEvents, Receipt, ReceiptStatus, SendResult, locmem
from campaigns.models import Message, MessageCount
from campaigns.receipts import apply_carrier_events
from tests.concurrency import race_errors
from tests.factories import CampaignFactory, MessageFactory, UserFactory

from .pipeline_support import expand, fr, fund, make_campaign, make_rates

pytestmark = pytest.mark.django_db
S = Message.Status


def table_counts(campaign_id=None) -> dict:
    rows = MessageCount.objects.all() if campaign_id is None else MessageCount.objects.filter(campaign_id=campaign_id)
    sums = rows.values("campaign_id", "status").annotate(n=Sum("count")).values_list("campaign_id", "status", "n")
    return {(c, s): n for c, s, n in sums if n}


def message_counts(campaign_id=None) -> dict:
    rows = Message.objects.all() if campaign_id is None else Message.objects.filter(campaign_id=campaign_id)
    counts = rows.values("campaign_id", "status").annotate(n=Count("id")).values_list("campaign_id", "status", "n")
    return {(c, s): n for c, s, n in counts}


def assert_exact(campaign_id=None) -> dict:
    counts = message_counts(campaign_id)
    assert table_counts(campaign_id) == counts
    return counts


def apply(*receipts):
    apply_carrier_events(gateway_alias="default", events=CarrierEvents(receipts=list(receipts)))


@pytest.fixture(autouse=True)
def rates(db):
    make_rates()


def test_expansion_claims_results_and_requeues_are_counted(user, settings):
    """Expansion writes with COPY on PostgreSQL and bulk_create on SQLite; both fire the triggers."""
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [fr(2)]}}
    }
    fund(user)
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 8)] + ["+12025550123"], status="dispatching")
    [(first, last)] = expand(campaign)
    assert assert_exact(campaign.pk) == {(campaign.pk, S.QUEUED): 7, (campaign.pk, S.INVALID): 1}

    pipeline.messages_claim(campaign_id=campaign.pk, first_id=first, last_id=last, token=uuid.uuid4())
    assert assert_exact(campaign.pk)[(campaign.pk, S.SUBMITTING)] == 7
    stale = pipeline.messages_requeue_stale(now=timezone.now() + timezone.timedelta(days=1))
    assert assert_exact(campaign.pk)[(campaign.pk, S.QUEUED)] == 7

    tasks.submit_batch(*stale[0])
    assert assert_exact(campaign.pk) == {
        (campaign.pk, S.SENT): 6,
        (campaign.pk, S.REJECTED): 1,
        (campaign.pk, S.INVALID): 1,
    }
    # A replayed submit result changes no message, so no count either.
    rejected = Message.objects.get(campaign=campaign, phone=fr(2))
    rows = MessageCount.objects.count()
    pipeline.messages_record_results(
        gateway_alias="default", results=[SendResult(ref=str(rejected.pk), accepted=False, error="x")]
    )
    assert MessageCount.objects.count() == rows


def test_receipts_move_counts_forward_and_replays_add_no_row(user):
    fund(user)
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 6)])
    tasks.dispatch_due_campaigns()
    cids = list(Message.objects.filter(campaign=campaign).order_by("id").values_list("carrier_id", flat=True))
    now = timezone.now()
    receipts = [Receipt(cid, ReceiptStatus.DELIVERED_OPERATOR, now) for cid in cids]
    receipts += [Receipt(cids[0], ReceiptStatus.RECEIVED, now), Receipt(cids[1], ReceiptStatus.HANDSET_PERMANENT, now)]
    apply(*receipts)
    assert assert_exact(campaign.pk) == {
        (campaign.pk, S.DELIVERED_OPERATOR): 3,
        (campaign.pk, S.RECEIVED): 1,
        (campaign.pk, S.HANDSET_PERMANENT): 1,
    }
    rows = MessageCount.objects.count()
    apply(*receipts)  # replayed: forward-only, no message changes
    apply(Receipt(cids[0], ReceiptStatus.DELIVERED_OPERATOR, now))  # late and lower: ignored
    assert MessageCount.objects.count() == rows
    assert_exact(campaign.pk)


def test_multipart_receipts_fold_into_counted_statuses(user):
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1)], text="x" * 200)  # two parts
    tasks.dispatch_due_campaigns()
    cid = Message.objects.get(campaign=campaign).carrier_id
    now = timezone.now()
    apply(Receipt(cid, ReceiptStatus.RECEIVED, now, part=1))
    assert assert_exact(campaign.pk) == {(campaign.pk, S.DELIVERED_OPERATOR): 1}
    apply(Receipt(cid, ReceiptStatus.HANDSET_PERMANENT, now, part=2))
    assert assert_exact(campaign.pk) == {(campaign.pk, S.PARTIALLY_RECEIVED): 1}


def test_deletes_are_counted_and_squash_removes_what_sums_to_zero(user):
    campaign = CampaignFactory(account=user, status="done")
    MessageFactory.create_batch(3, campaign=campaign, status=S.RECEIVED)
    MessageFactory.create_batch(2, campaign=campaign, status=S.EXPIRED)
    Message.objects.filter(campaign=campaign, status=S.EXPIRED).delete()
    assert assert_exact(campaign.pk) == {(campaign.pk, S.RECEIVED): 3}
    with connection.cursor() as cursor:  # as the benchmarks clean up: raw SQL
        cursor.execute("DELETE FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])
    assert assert_exact(campaign.pk) == {}
    message_counts_squash()
    assert not MessageCount.objects.filter(campaign=campaign).exists()


def test_squash_leaves_one_row_per_status_keeps_the_counts_and_is_idempotent(user, other_user):
    ours, theirs = CampaignFactory(account=user, status="done"), CampaignFactory(account=other_user, status="done")
    for status in (S.SENT, S.DELIVERED_OPERATOR, S.SENT, S.INVALID):
        MessageFactory.create_batch(2, campaign=ours, status=status)
    MessageFactory(campaign=theirs, status=S.SENT)
    Message.objects.filter(campaign=ours, status=S.SENT).update(status=S.RECEIVED)
    before = assert_exact()
    assert MessageCount.objects.filter(campaign=ours).count() > 3

    assert message_counts_squash() == 2
    assert assert_exact() == before
    squashed = sorted(MessageCount.objects.values_list("campaign_id", "status", "count", "is_squashed"))
    assert squashed == sorted((c, s, n, True) for (c, s), n in before.items())
    assert message_counts_squash() == 0  # nothing left to fold
    assert sorted(MessageCount.objects.values_list("campaign_id", "status", "count", "is_squashed")) == squashed

    tasks.squash_message_counts()  # the beat task calls the same service
    assert assert_exact() == before


def test_report_counts_match_after_a_campaign_runs_end_to_end(client_logged, user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [fr(3)]}}
    }
    fund(user)
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 121)] + ["+12025550123"])
    tasks.dispatch_due_campaigns()  # eager: expand, submit in batches, record results
    by_phone = dict(Message.objects.filter(campaign=campaign).values_list("phone", "carrier_id"))
    now = timezone.now()
    apply(*[Receipt(by_phone[m.to], ReceiptStatus.DELIVERED_OPERATOR, now) for m in locmem.outbox])
    apply(*[Receipt(by_phone[m.to], ReceiptStatus.RECEIVED, now) for m in locmem.outbox[:100]])
    apply(Receipt(by_phone[locmem.outbox[100].to], ReceiptStatus.EXPIRED, now))
    message_counts_squash()
    apply(Receipt(by_phone[locmem.outbox[101].to], ReceiptStatus.ANTISPAM, now))  # after the squash

    expected = {s: n for (_c, s), n in assert_exact(campaign.pk).items()}
    assert expected == {S.RECEIVED: 100, S.DELIVERED_OPERATOR: 17, S.EXPIRED: 1, S.ANTISPAM: 1, S.REJECTED: 1,
                        S.INVALID: 1}  # fmt: skip
    response = client_logged.get(f"/sms/campaigns/{campaign.uuid}/report/")
    assert {row.status: row.count for row in response.context["counts"]} == expected
    assert (response.context["total"], response.context["final"], response.context["errors"]) == (121, 104, 4)
    detail = client_logged.get(f"/sms/{campaign.uuid}/").context["counts"]
    assert {row.status: row.count for row in detail.rows} == expected


def test_keyset_pages_walk_every_message_of_the_filter_newest_first(user):
    """The per-status page query returns what a plain ORDER BY -id would, page after page."""
    campaign = CampaignFactory(account=user, status="done")
    statuses = [S.RECEIVED, S.SENT, S.RECEIVED, S.EXPIRED, S.RECEIVED, S.INVALID, S.HANDSET_PERMANENT]
    for i in range(70):
        MessageFactory(campaign=campaign, status=statuses[i % len(statuses)])
    MessageFactory(campaign=CampaignFactory(account=user, status="done"), status=S.RECEIVED)  # newer, elsewhere
    errors = [s for s in S.values if s >= S.INVALID]
    for wanted in (list(S.values), errors, [S.RECEIVED], [S.QUEUED]):
        expected = list(
            Message.objects.filter(campaign=campaign, status__in=wanted).order_by("-id").values_list("id", flat=True)
        )
        seen, below = [], None
        while True:
            rows, has_next = selectors.campaign_messages_page(campaign=campaign, statuses=wanted, below=below, size=9)
            assert all(m.status in wanted and m.phone for m in rows)
            seen += [m.id for m in rows]
            if not has_next:
                break
            below = rows[-1].id
        assert seen == expected, wanted


def test_the_migration_counts_the_messages_already_there(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate([("campaigns", "0003_expansion_reservation")])
    try:
        user = UserFactory()
        campaign = CampaignFactory(account=user, status="done")
        with connection.cursor() as cursor:
            for i, status in enumerate([S.RECEIVED, S.RECEIVED, S.EXPIRED]):
                cursor.execute(
                    "INSERT INTO campaigns_message (campaign_id, account_id, phone, region, text, parts, credits, "
                    "status, gateway, error, attempts, created_at) "
                    "VALUES (%s, %s, %s, 'FR', 'x', 1, 1, %s, 'default', '', 0, %s)",
                    [campaign.pk, user.pk, fr(i), status, timezone.now()],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert sorted(MessageCount.objects.values_list("status", "count", "is_squashed")) == [
        (S.RECEIVED, 2, True),
        (S.EXPIRED, 1, True),
    ]
    MessageFactory(campaign=campaign, status=S.EXPIRED)  # the triggers are in place
    assert_exact()


# --- PostgreSQL: concurrent writers and squashes ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_receipts_and_squashes_keep_the_counts_exact(require_postgres):
    user = UserFactory()
    fund(user, "2000")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, 1201)])
    tasks.dispatch_due_campaigns()
    cids = list(Message.objects.filter(campaign=campaign).order_by("id").values_list("carrier_id", flat=True))
    now = timezone.now()

    def receipts(outcome, chosen):
        def run():
            for start in range(0, len(chosen), 50):
                apply(*[Receipt(cid, outcome, now) for cid in chosen[start : start + 50]])

        return run

    def squash_repeatedly():
        for _ in range(20):
            message_counts_squash()

    errors = race_errors(
        receipts(ReceiptStatus.RECEIVED, cids[:800]),
        receipts(ReceiptStatus.HANDSET_PERMANENT, cids[400:]),  # 400 messages in both threads
        squash_repeatedly,
        squash_repeatedly,
    )
    assert errors == []
    counts = assert_exact(campaign.pk)
    assert sum(counts.values()) == 1200 and counts[(campaign.pk, S.HANDSET_PERMANENT)] >= 400
    message_counts_squash()
    assert assert_exact(campaign.pk) == counts
    assert MessageCount.objects.filter(campaign=campaign).count() == len(counts)


@pytest.mark.django_db(transaction=True)
def test_squash_neither_waits_for_nor_loses_uncommitted_deltas(require_postgres):
    campaign = CampaignFactory(account=UserFactory(), status="done")
    MessageFactory.create_batch(4, campaign=campaign, status=S.SENT)
    updated, release = threading.Event(), threading.Event()

    def writer():  # moves two messages in a transaction left open while the squash runs
        with transaction.atomic():
            ids = list(Message.objects.filter(campaign=campaign).values_list("id", flat=True)[:2])
            Message.objects.filter(id__in=ids).update(status=S.RECEIVED)
            updated.set()
            release.wait(30)

    thread = threading.Thread(target=lambda: (writer(), connections.close_all()))
    thread.start()
    try:
        assert updated.wait(30)
        assert message_counts_squash() == 1  # does not block on the open transaction
        assert table_counts(campaign.pk) == {(campaign.pk, S.SENT): 4}  # what is committed
    finally:
        release.set()
        thread.join(30)
    assert assert_exact(campaign.pk) == {(campaign.pk, S.SENT): 2, (campaign.pk, S.RECEIVED): 2}
    message_counts_squash()
    assert MessageCount.objects.filter(campaign=campaign, is_squashed=False).count() == 0
    assert_exact(campaign.pk)


@pytest.mark.django_db(transaction=True)
def test_a_campaign_another_squash_holds_is_skipped(require_postgres):
    campaign = CampaignFactory(account=UserFactory(), status="done")
    MessageFactory.create_batch(3, campaign=campaign, status=S.SENT)
    from campaigns.counts import _LOCK_CLASS

    held, release = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", [_LOCK_CLASS, campaign.pk])
            held.set()
            release.wait(30)

    thread = threading.Thread(target=lambda: (holder(), connections.close_all()))
    thread.start()
    try:
        assert held.wait(30)
        assert message_counts_squash() == 0
        assert MessageCount.objects.filter(campaign=campaign, is_squashed=False).exists()
    finally:
        release.set()
        thread.join(30)
    assert message_counts_squash() == 1
    assert_exact(campaign.pk)
