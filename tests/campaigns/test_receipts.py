import json
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from addressbook.models import BlacklistEntry
from campaigns import pipeline, tasks
from campaigns.gateways import CarrierEvents, InboundSMS, Receipt, ReceiptStatus, SendResult
from campaigns.models import Inbound, Message, PendingReceipt
from campaigns.receipts import apply_carrier_events, callback_sign, is_stop, normalize_carrier_id

from .pipeline_support import expand, fr, fund, make_campaign, make_rates

pytestmark = pytest.mark.django_db
S = Message.Status
T0 = timezone.now()


@pytest.fixture
def sent(user):
    """Three messages submitted through locmem; returns them by phone."""
    make_rates()
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1), fr(2), fr(3)])
    tasks.dispatch_due_campaigns()
    return {m.phone: m for m in Message.objects.filter(campaign=campaign)}


def apply(*receipts, inbound=()):
    apply_carrier_events(gateway_alias="default", events=CarrierEvents(receipts=list(receipts), inbound=list(inbound)))


def status(message):
    message.refresh_from_db()
    return message.status


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected"),
    [("00A1F", {}, "a1f"), (" AbC ", {}, "abc"), ("0", {}, "0"), ("41503", {"decimal": True}, "a21f"), (255, {}, "ff")],
)
def test_normalize_carrier_id(raw, kwargs, expected):
    assert normalize_carrier_id(raw, **kwargs) == expected


@pytest.mark.parametrize(
    "text", ["STOP", "stop", "Stop.", "ARRET", "ARRÊT", "arrêt !", "UNSUBSCRIBE", "STOP SMS", "stop.", " Stop "]
)
def test_stop_variants(text):
    assert is_stop(text)


@pytest.mark.parametrize("text", ["Merci", "stop calling me maybe", "Non-stop", "OK"])
def test_not_stop(text):
    assert not is_stop(text)


def test_statuses_only_move_forward_whatever_the_order(sent):
    a, b = sent[fr(1)], sent[fr(2)]
    apply(
        Receipt(a.carrier_id, ReceiptStatus.RECEIVED, T0), Receipt(b.carrier_id, ReceiptStatus.DELIVERED_OPERATOR, T0)
    )
    apply(Receipt(a.carrier_id, ReceiptStatus.DELIVERED_OPERATOR, T0 + timedelta(seconds=1)))  # late
    apply(Receipt(b.carrier_id, ReceiptStatus.HANDSET_PERMANENT, T0, error="off"))
    apply(Receipt(b.carrier_id, ReceiptStatus.RECEIVED, T0))  # failures are final
    assert status(a) == S.RECEIVED
    assert status(b) == S.HANDSET_PERMANENT and b.error == "off"


def test_duplicates_in_one_batch_keep_the_highest(sent):
    a = sent[fr(1)]
    apply(
        Receipt(a.carrier_id, ReceiptStatus.RECEIVED, T0),
        Receipt(a.carrier_id, ReceiptStatus.DELIVERED_OPERATOR, T0),
    )
    assert status(a) == S.RECEIVED


def test_carrier_ids_match_across_case_and_leading_zeros(sent):
    a = sent[fr(1)]
    apply(Receipt("000" + a.carrier_id.upper(), ReceiptStatus.RECEIVED, T0))
    assert status(a) == S.RECEIVED


def test_receipt_before_submit_result_is_buffered_then_applied(user):
    make_rates()
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1)], status="dispatching")
    expand(campaign)
    message = Message.objects.get(campaign=campaign)
    apply(Receipt("ABC123", ReceiptStatus.RECEIVED, T0))
    assert PendingReceipt.objects.count() == 1
    pipeline.messages_record_results(
        gateway_alias="default", results=[SendResult(ref=str(message.pk), accepted=True, carrier_id="abc123")]
    )
    assert status(message) == S.RECEIVED
    assert not PendingReceipt.objects.exists()


def test_multipart_receipts_fold(sent):
    a, b = sent[fr(1)], sent[fr(2)]
    Message.objects.filter(pk__in=[a.pk, b.pk]).update(parts=2)
    apply(Receipt(a.carrier_id, ReceiptStatus.RECEIVED, T0, part=1))
    assert status(a) == S.DELIVERED_OPERATOR
    apply(Receipt(a.carrier_id, ReceiptStatus.RECEIVED, T0, part=2))
    assert status(a) == S.RECEIVED
    apply(
        Receipt(b.carrier_id, ReceiptStatus.RECEIVED, T0, part=1),
        Receipt(b.carrier_id, ReceiptStatus.HANDSET_PERMANENT, T0, part=2),
    )
    assert status(b) == S.PARTIALLY_RECEIVED


def test_bulk_receipts_use_a_bounded_number_of_queries(sent, django_assert_max_num_queries):
    receipts = [Receipt(m.carrier_id, ReceiptStatus.RECEIVED, T0) for m in sent.values()] * 50
    with django_assert_max_num_queries(6):
        apply(*receipts)
    assert all(status(m) == S.RECEIVED for m in sent.values())


def test_reply_matches_the_last_message_to_that_number_across_accounts(user, other_user):
    make_rates()
    fund(user)
    fund(other_user)
    make_campaign(user, numbers=[fr(5)])
    tasks.dispatch_due_campaigns()
    theirs = make_campaign(other_user, numbers=[fr(5)])
    tasks.dispatch_due_campaigns()
    last = Message.objects.get(campaign=theirs)
    apply(inbound=[InboundSMS(sender=fr(5), recipient="+33700000000", text="Oui", at=T0, carrier_id="mo1")])
    reply = Inbound.objects.get()
    assert (reply.account, reply.message, reply.campaign) == (other_user, last, theirs)


def test_custom_sender_messages_cannot_be_answered(user):
    make_rates()
    fund(user)
    make_campaign(user, numbers=[fr(5)], sender="MYSHOP")
    tasks.dispatch_due_campaigns()
    apply(inbound=[InboundSMS(sender=fr(5), recipient="+33700000000", text="Oui", at=T0, carrier_id="mo1")])
    assert Inbound.objects.get().account is None


def test_stop_blacklists_for_that_account_only_and_is_idempotent(sent, user, other_user):
    stop = InboundSMS(sender=fr(1), recipient="+33700000000", text="Stop.", at=T0, carrier_id="MO-9")
    apply(inbound=[stop])
    apply(inbound=[stop])  # replayed
    assert Inbound.objects.get().is_stop
    entry = BlacklistEntry.objects.get()
    assert (entry.account, entry.number, entry.source) == (user, fr(1), "stop")
    assert not BlacklistEntry.objects.filter(account=other_user).exists()


def post(client, body: dict, *, secret="s3cret", ts=None, alias="default", signature=None):
    raw = json.dumps(body).encode()
    ts = int(time.time()) if ts is None else ts
    return client.post(
        reverse("campaigns:carrier_callback", kwargs={"alias": alias}),
        raw,
        content_type="application/json",
        headers={
            "X-Sms-Timestamp": str(ts),
            "X-Sms-Signature": signature or callback_sign(body=raw, timestamp=ts, secret=secret),
        },
    )


@pytest.fixture
def secret(settings):
    settings.SMS_CALLBACK_SECRET = "s3cret"


def test_signed_callback_applies_receipts_and_replies(client, sent, secret):
    a = sent[fr(1)]
    body = {
        "receipts": [{"id": a.carrier_id, "status": "received", "at": T0.isoformat()}],
        "inbound": [{"from": fr(1), "to": "+33700000000", "text": "STOP", "id": "mo-1"}],
    }
    response = post(client, body)
    assert response.status_code == 200 and response.json() == {"receipts": 1, "inbound": 1}
    assert status(a) == S.RECEIVED
    assert BlacklistEntry.objects.filter(number=fr(1), source="stop").exists()
    assert post(client, body).status_code == 200  # replay inside the window: no change
    assert Inbound.objects.count() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "wrong"},
        {"ts": int(time.time()) - 600},
        {"signature": "0" * 64},
    ],
)
def test_forged_or_stale_callbacks_change_nothing(client, sent, secret, kwargs):
    a = sent[fr(1)]
    response = post(client, {"receipts": [{"id": a.carrier_id, "status": "received"}]}, **kwargs)
    assert response.status_code == 403
    assert status(a) == S.SENT


def test_malformed_callback_is_refused_and_unknown_gateway_404(client, sent, secret):
    assert post(client, {"receipts": [{"status": "received"}]}).status_code == 403
    assert post(client, {"receipts": []}, alias="nope").status_code == 404


def test_callbacks_disabled_without_secret(client, sent, settings):
    settings.SMS_CALLBACK_SECRET = ""
    assert post(client, {"receipts": []}, secret="").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_with_redis_callbacks_are_buffered_then_applied_in_bulk(client, user, secret, redis_url, monkeypatch):
    from campaigns import receipts
    from smsplatform.celery import app

    make_rates()
    fund(user)
    campaign = make_campaign(user, numbers=[fr(1), fr(2)])
    tasks.dispatch_due_campaigns()
    a, b = Message.objects.filter(campaign=campaign).order_by("phone")
    monkeypatch.setattr(receipts, "_redis_client", None)
    app.conf.task_always_eager = False  # leave the flush task queued: nothing applied yet
    try:
        for message in (a, b):
            assert post(client, {"receipts": [{"id": message.carrier_id, "status": "received"}]}).status_code == 200
    finally:
        app.conf.task_always_eager = True
        import redis

        redis.Redis.from_url(redis_url).delete("sending")  # the queued flush task: not for another run
    assert status(a) == status(b) == S.SENT
    assert receipts.carrier_callbacks_flush(gateway_alias="default") == 2
    assert status(a) == status(b) == S.RECEIVED
    assert receipts.carrier_callbacks_flush(gateway_alias="default") == 0
