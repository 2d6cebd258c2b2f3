"""The SMPP connector and gateway against the node carrier simulator over real TCP (GW-1, SND-15)."""

import threading
import uuid

import pytest
import redis

from campaigns.gateways import (
    CarrierEvents,
    MessageKind,
    OutgoingSMS,
    PermanentGatewayError,
    ReceiptStatus,
    TemporaryGatewayError,
    get_gateway,
)
from campaigns.gateways.smpp import State, codec, gateway_status
from campaigns.gateways.smpp.connector import Connector
from campaigns.gateways.smpp.status import PREFIX, key

from .smpp_simulator import Simulator, wait_for


class RecordingSink:
    def __init__(self):
        self.lock = threading.Lock()
        self.receipts = []
        self.inbound = []
        self.calls = 0

    def __call__(self, *, gateway_alias: str, events: CarrierEvents) -> None:
        with self.lock:
            self.calls += 1
            self.receipts.extend(events.receipts)
            self.inbound.extend(events.inbound)


@pytest.fixture
def simulator_factory(tmp_path):
    started = []

    def start(*args, **kwargs):
        simulator = Simulator(*args, log=tmp_path / f"simulator{len(started)}.log", **kwargs).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def connector_factory(settings, redis_url):
    """Start a connector thread for a fresh alias pointing at a simulator; stop it at teardown."""
    running = []

    def start(simulator, **options):
        alias = f"smpp-{uuid.uuid4().hex[:8]}"
        options = simulator.options(REDIS_URL=redis_url, REPLY_TIMEOUT=30, **options)
        settings.SMS_GATEWAYS = {
            **settings.SMS_GATEWAYS,
            alias: {"BACKEND": "campaigns.gateways.smpp.Gateway", "OPTIONS": options},
        }
        sink = RecordingSink()
        connector = Connector(alias, options=options, on_events=sink, flush_interval=0.05)
        thread = threading.Thread(target=connector.run, daemon=True)
        thread.start()
        running.append((connector, thread, alias))
        return alias, connector, sink

    yield start
    client = redis.Redis.from_url(redis_url)
    for connector, thread, alias in running:
        connector.stop()
        thread.join(10)
        assert not thread.is_alive()
        keys = list(client.scan_iter(f"{PREFIX}:{alias}:*", count=1000))
        if keys:
            client.delete(*keys)


def bound(alias):
    return wait_for(lambda: gateway_status(alias).state == State.BOUND)


def send(alias, messages, batch=100):
    gateway = get_gateway(alias)
    results = []
    for start in range(0, len(messages), batch):
        results.extend(gateway.send_messages(messages[start : start + batch]))
    return results


def test_long_gsm7_with_euro_at_part_boundary_arrives_whole_with_per_part_receipts(
    simulator_factory, connector_factory
):
    simulator = simulator_factory()
    alias, _, sink = connector_factory(simulator)
    assert bound(alias)
    text = "a" * 152 + "€" + "a" * 152  # € may not be split from its escape: 3 parts, not 2

    [result] = send(alias, [OutgoingSMS(ref="m1", to="+33612345601", text=text)])

    assert result.accepted and result.parts == 3 and result.carrier_id
    assert simulator.stats(messages=True)["messages"]["33612345601"] == [text]
    assert wait_for(lambda: len(sink.receipts) == 3)
    assert {(r.carrier_id, r.part, r.status) for r in sink.receipts} == {
        (result.carrier_id, part, ReceiptStatus.RECEIVED) for part in (1, 2, 3)
    }


def test_ucs2_with_emoji_never_splits_a_surrogate_pair(simulator_factory, connector_factory):
    simulator = simulator_factory()
    alias, _, _ = connector_factory(simulator)
    assert bound(alias)
    text = "ç" * 66 + "😀" + "a" * 66
    short = "Arrêt du service 😀"

    results = send(
        alias,
        [OutgoingSMS(ref="u1", to="+33612345602", text=text), OutgoingSMS(ref="u2", to="+33612345603", text=short)],
    )

    assert [(r.accepted, r.parts) for r in results] == [(True, 3), (True, 1)]
    messages = simulator.stats(messages=True)["messages"]
    assert messages["33612345602"] == [text]
    assert messages["33612345603"] == [short]


def test_thousand_messages_get_their_receipts_matched_despite_decimal_ids_and_reordering(
    simulator_factory, connector_factory
):
    # Receipt ids are the decimal form of the hex submit ids, with no TLV: only the text is parsed.
    simulator = simulator_factory(
        "--receipt-id-format", "decimal", "--no-receipt-tlv", "--out-of-order", "--receipt-delay-ms", "5"
    )
    alias, _, sink = connector_factory(simulator, WINDOW=50)
    assert bound(alias)
    messages = [OutgoingSMS(ref=str(i), to=f"+3361{i:05d}01", text=f"Promo {i}") for i in range(1000)]
    messages[10] = OutgoingSMS(ref="10", to="+33612345698", text="undelivered")
    messages[11] = OutgoingSMS(ref="11", to="+33612345699", text="bad number")
    messages[12] = OutgoingSMS(ref="12", to="+33612345695", text="carrier hiccup")

    results = send(alias, messages, batch=200)

    assert [r.ref for r in results] == [m.ref for m in messages]
    refused = {r.ref: (r.accepted, r.retryable, r.error) for r in results if not r.accepted}
    assert refused == {
        "11": (False, False, "Refused by the carrier: ESME_RINVDSTADR."),
        "12": (False, True, "Refused by the carrier: ESME_RSYSERR."),
    }
    carrier_ids = {r.carrier_id for r in results if r.accepted}
    assert len(carrier_ids) == 998
    assert wait_for(lambda: len(sink.receipts) >= 998, timeout=15)
    assert {r.carrier_id for r in sink.receipts} == carrier_ids
    assert len(sink.receipts) == 998
    by_id = {r.carrier_id: r for r in sink.receipts}
    undelivered = by_id[results[10].carrier_id]
    assert (undelivered.status, undelivered.error) == (ReceiptStatus.HANDSET_PERMANENT, "UNDELIV err:001")
    assert by_id[results[0].carrier_id].status == ReceiptStatus.RECEIVED
    assert sink.calls < 200  # batched, not one call per receipt


def test_receipts_after_a_restart_are_matched_from_redis(simulator_factory, connector_factory):
    simulator = simulator_factory()
    alias, first, _ = connector_factory(simulator)
    assert bound(alias)
    [result] = send(alias, [OutgoingSMS(ref="r", to="+33612345604", text="b" * 200)])
    first.stop()
    restarted = Connector(alias, options=first.options, on_events=RecordingSink())
    # The simulator numbers ids in sequence: part 2 is the next one, written here in decimal.
    second_part = str(int(result.carrier_id, 16) + 1)
    late = codec.parse_receipt(f"id:{second_part} stat:DELIVRD err:000")

    [receipt] = restarted._match([late])

    assert (receipt.carrier_id, receipt.part, receipt.status) == (result.carrier_id, 2, ReceiptStatus.RECEIVED)


def test_throttling_backs_off_and_loses_nothing(simulator_factory, connector_factory):
    simulator = simulator_factory("--throttle-per-second", "150")
    alias, _, _ = connector_factory(simulator)
    assert bound(alias)
    messages = [OutgoingSMS(ref=str(i), to=f"+3362{i:05d}01", text="Hi") for i in range(400)]

    results = send(alias, messages)

    assert all(r.accepted for r in results)
    stats = simulator.stats(messages=True)
    assert stats["throttled"] > 0
    assert stats["accepted"] == 400
    assert sorted(stats["messages"]) == sorted(m.to[1:] for m in messages)


def test_link_dropped_mid_campaign_is_restored_and_every_message_is_sent_exactly_once(
    simulator_factory, connector_factory
):
    simulator = simulator_factory("--drop-after", "170")  # mid-batch, with submits in flight
    alias, _, sink = connector_factory(simulator, WINDOW=30)
    assert bound(alias)
    messages = [OutgoingSMS(ref=str(i), to=f"+3363{i:05d}01", text=f"Sale {i}") for i in range(500)]

    results = send(alias, messages, batch=50)

    assert all(r.accepted for r in results)
    stats = simulator.stats(messages=True)
    assert (stats["drops"], stats["binds"]) == (1, 2)
    assert {dest: len(texts) for dest, texts in stats["messages"].items()} == {m.to[1:]: 1 for m in messages}
    assert wait_for(lambda: gateway_status(alias).state == State.BOUND)
    assert "Link lost" in gateway_status(alias).last_error
    # Receipts the simulator had not yet sent on the dead session are lost with it (a real SMSC
    # would redeliver them); every one of the new session arrives and matches a message.
    assert wait_for(lambda: len(sink.receipts) >= 350, timeout=10)
    assert {r.carrier_id for r in sink.receipts} <= {r.carrier_id for r in results}


def test_mo_messages_become_inbound_replies_in_every_data_coding(simulator_factory, connector_factory):
    simulator = simulator_factory()
    alias, _, sink = connector_factory(simulator)
    assert bound(alias)

    simulator.send_mo("+33612345678", "+33700000000", "STOP")
    simulator.send_mo("+33612345679", "+33700000000", "Arrêt 😀", data_coding=8)
    simulator.send_mo("+33612345680", "+33700000000", "Très bien", data_coding=3)

    assert wait_for(lambda: len(sink.inbound) == 3)
    assert [(m.sender, m.recipient, m.text) for m in sink.inbound] == [
        ("+33612345678", "+33700000000", "STOP"),
        ("+33612345679", "+33700000000", "Arrêt 😀"),
        ("+33612345680", "+33700000000", "Très bien"),
    ]


def test_bad_credentials_give_a_clear_error_in_the_gateway_status(simulator_factory, connector_factory, admin_client):
    simulator = simulator_factory()
    alias, _, _ = connector_factory(simulator, PASSWORD="wrong")

    status = wait_for(lambda: (s := gateway_status(alias)).state == State.AUTH_FAILED and s)

    assert status.detail == (
        f"The carrier at 127.0.0.1:{simulator.port} refused the bind of system_id 'test': "
        "ESME_RINVPASWD (check SYSTEM_ID, PASSWORD and SYSTEM_TYPE)."
    )
    with pytest.raises(PermanentGatewayError, match="ESME_RINVPASWD"):
        get_gateway(alias).send_messages([OutgoingSMS(ref="1", to="+33612345678", text="Hi")])
    assert simulator.stats()["accepted"] == 0
    page = admin_client.get("/admin/campaigns/gatewayhealth/").content.decode()
    assert "auth_failed" in page and "ESME_RINVPASWD (check SYSTEM_ID, PASSWORD and SYSTEM_TYPE)" in page


def test_enquire_link_runs_on_a_timer_and_stop_unbinds_cleanly(simulator_factory, connector_factory):
    simulator = simulator_factory()
    alias, connector, _ = connector_factory(simulator, ENQUIRE_LINK_INTERVAL=0.1)
    assert bound(alias)

    assert wait_for(lambda: simulator.stats()["enquireLinks"] >= 3, timeout=3)
    connector.stop()

    assert wait_for(lambda: gateway_status(alias).state == State.STOPPED)
    assert simulator.stats()["unbinds"] == 1
    assert wait_for(lambda: simulator.stats()["sessions"] == 0)


@pytest.mark.django_db(transaction=True)
def test_receipts_and_mo_stop_reach_the_pipeline(simulator_factory, connector_factory):
    """End to end with the pipeline's sink: the receipt updates the message, STOP blacklists."""
    from addressbook.services import blacklisted_numbers
    from campaigns import receipts
    from campaigns.models import Campaign, Message
    from tests.factories import UserFactory

    simulator = simulator_factory("--receipt-delay-ms", "500")  # after the message row has its carrier id
    alias, connector, _ = connector_factory(simulator)
    connector.on_events = receipts.apply_carrier_events
    user = UserFactory()
    campaign = Campaign.objects.create(account=user, text="Promo", gateway=alias)
    message = Message.objects.create(
        campaign=campaign, account=user, phone="+33612345678", region="FR", text="Promo", credits=1, gateway=alias
    )
    assert bound(alias)

    [result] = send(alias, [OutgoingSMS(ref=str(message.pk), to=message.phone, text=message.text)])
    Message.objects.filter(pk=message.pk).update(carrier_id=result.carrier_id, status=Message.Status.SENT)
    simulator.send_mo("+33612345678", "+33700000000", "STOP")

    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == Message.Status.RECEIVED)
    assert wait_for(lambda: blacklisted_numbers(account_id=user.pk, numbers=["+33612345678"]))


def test_without_a_running_connector_the_batch_is_withdrawn_and_retried_later(settings, redis_url):
    alias = f"smpp-{uuid.uuid4().hex[:8]}"
    options = {"REDIS_URL": redis_url, "REPLY_TIMEOUT": 0.3}
    settings.SMS_GATEWAYS = {alias: {"BACKEND": "campaigns.gateways.smpp.Gateway", "OPTIONS": options}}

    with pytest.raises(TemporaryGatewayError, match="did not answer within 0 s \\(nothing submitted; link: unknown\\)"):
        get_gateway(alias).send_messages([OutgoingSMS(ref="1", to="+33612345678", text="Hi")])

    assert redis.Redis.from_url(redis_url).llen(key(alias, "requests")) == 0


def test_voice_messages_are_refused_without_reaching_the_carrier(simulator_factory, connector_factory):
    simulator = simulator_factory()
    alias, _, _ = connector_factory(simulator)
    assert bound(alias)

    results = send(
        alias,
        [
            OutgoingSMS(ref="v", to="+33612345678", text="Hi", kind=MessageKind.VOICE),
            OutgoingSMS(ref="s", to="+33612345678", text="Hi"),
        ],
    )

    assert [(r.ref, r.accepted, r.error) for r in results] == [
        ("v", False, "Voice not supported by SMPP."),
        ("s", True, ""),
    ]
    assert simulator.stats()["submits"] == 1
