"""SMPP encoding rules: addresses, data_coding, UDH parts, command_status and receipts (GW-1)."""

from datetime import UTC, datetime

import pytest
import smpplib.client
import smpplib.smpp

from campaigns.gateways.base import ReceiptStatus
from campaigns.gateways.smpp import codec
from campaigns.text import GSM7_BASIC, GSM7_EXTENSION


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("MaBoutique", (5, 0, "MaBoutique")),
        ("+33612345678", (1, 1, "33612345678")),
        ("0033612345678", (1, 1, "33612345678")),
        ("36180", (2, 1, "36180")),
    ],
)
def test_sender_ton_npi_follows_the_sender(sender, expected):
    assert codec.source_address(sender) == expected


def test_destination_is_international_e164():
    assert codec.destination_address("+33612345678") == (1, 1, "33612345678")


def test_gsm7_tables_match_the_counting_rules():
    assert {char for char in codec._GSM7_BASIC_TABLE if char != "\x1b"} == GSM7_BASIC
    assert set(codec._GSM7_EXT_TABLE) == GSM7_EXTENSION


def test_long_gsm7_never_splits_the_euro_escape_pair():
    text = "a" * 152 + "€" + "a" * 152
    message = codec.encode_message(text, ref=7)

    assert (message.data_coding, message.esm_class, len(message.parts)) == (0, 0x40, 3)
    assert [part[:6] for part in message.parts] == [bytes([5, 0, 3, 7, 3, seq]) for seq in (1, 2, 3)]
    assert message.parts[1][6:8] == b"\x1b\x65"  # € opens part 2 whole
    assert "".join(codec.gsm7_decode(part[6:]) for part in message.parts) == text


def test_ucs2_never_splits_a_surrogate_pair():
    text = "a" * 66 + "😀" + "a" * 66
    message = codec.encode_message(text)

    assert (message.data_coding, len(message.parts)) == (8, 3)
    assert "".join(part[6:].decode("utf-16-be") for part in message.parts) == text


def test_single_part_has_no_udh():
    message = codec.encode_message("Bonjour é")
    assert (message.esm_class, message.parts) == (0, [codec.gsm7_encode("Bonjour é")])


def test_latin1_route_falls_back_to_ucs2_for_the_euro_sign():
    assert codec.encode_message("Prix 5 €", default_data_coding=3).data_coding == 8
    latin = codec.encode_message("Très bien " * 20, default_data_coding=3)
    assert (latin.data_coding, [len(p) for p in latin.parts]) == (3, [140, 72])  # 134 + 6-octet UDH, then 66 + UDH


@pytest.mark.parametrize(
    ("data", "coding", "text"),
    [
        (codec.gsm7_encode("{STOP} €"), 0, "{STOP} €"),
        ("Très".encode("latin-1"), 3, "Très"),
        ("Arrêt 😀".encode("utf-16-be"), 8, "Arrêt 😀"),
        (b"STOP", 1, "STOP"),
    ],
)
def test_inbound_data_codings_are_decoded(data, coding, text):
    assert codec.decode_short_message(data, data_coding=coding, esm_class=0) == text


def test_inbound_udh_is_stripped_and_read():
    data = bytes([5, 0, 3, 42, 2, 1]) + b"STO"
    assert codec.decode_short_message(data, data_coding=1, esm_class=0x40) == "STO"
    assert codec.concat_info(data, 0x40) == (42, 2, 1)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(0x58, True), (0x14, True), (0x08, True), (0x0B, False), (0x0A, False), (0x01, False), (0x66, False)],
)
def test_command_status_table(status, retryable):
    assert codec.is_retryable(status) is retryable


def test_carrier_ids_are_normalised_and_read_both_ways():
    assert codec.normalize_carrier_id(b"000001A2B\x00") == "1a2b"
    assert codec.carrier_id_variants("6699") == ["6699", "1a2b", "26265"]


def test_receipt_text_is_parsed():
    text = "id:0001A2B sub:001 dlvrd:000 submit date:2611250530 done date:2611250531 stat:UNDELIV err:001 text:Promo"

    receipt = codec.parse_receipt(text)

    assert receipt == codec.ParsedReceipt(
        carrier_id="0001A2B",
        stat="UNDELIV",
        status=ReceiptStatus.HANDSET_PERMANENT,
        error="UNDELIV err:001",
        at=datetime(2026, 11, 25, 5, 31, tzinfo=UTC),
    )


def test_receipt_tlvs_win_over_the_text():
    receipt = codec.parse_receipt("id:6699 stat:DELIVRD", receipted_message_id=b"1A2B\x00", message_state=2)
    assert (receipt.carrier_id, receipt.status, receipt.error) == ("1A2B", ReceiptStatus.RECEIVED, "")
    assert codec.parse_receipt("no id here") is None


def test_deliver_sm_is_decoded_like_smpplib_encodes_it():
    client = smpplib.client.Client("127.0.0.1", 2775)
    raw = smpplib.smpp.make_pdu(
        "deliver_sm",
        client=client,
        source_addr_ton=1,
        source_addr="33612345678",
        dest_addr_ton=5,
        destination_addr="Shop",
        esm_class=4,
        data_coding=0,
        short_message=b"id:1A2B stat:DELIVRD",
        receipted_message_id="1A2B",
        message_state=2,
    ).generate()

    assert codec.parse_deliver_sm(raw) == codec.DeliverSm(
        source_addr_ton=1,
        source_addr="33612345678",
        dest_addr_ton=5,
        destination_addr="Shop",
        esm_class=4,
        data_coding=0,
        short_message=b"id:1A2B stat:DELIVRD",
        receipted_message_id="1A2B",
        message_state=2,
    )


def test_submit_sm_built_by_hand_parses_back_with_smpplib():
    client = smpplib.client.Client("127.0.0.1", 2775)
    body = codec.submit_sm_body(
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Shop",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="33612345678",
        esm_class=0x40,
        data_coding=8,
        registered_delivery=1,
        short_message=b"\x05\x00\x03\x01\x02\x01\x00A",
    )

    pdu = smpplib.smpp.parse_pdu(codec.pdu(codec.SUBMIT_SM, 7, body), client=client)

    assert (pdu.sequence, pdu.source_addr, pdu.destination_addr, pdu.esm_class) == (7, b"Shop", b"33612345678", 0x40)
    assert (pdu.data_coding, pdu.registered_delivery, pdu.short_message) == (8, 1, b"\x05\x00\x03\x01\x02\x01\x00A")
