"""SMPP 3.4 encoding rules: addresses (TON/NPI), data_coding, UDH parts, command_status, receipts.

Pure functions, no I/O. Splitting follows :func:`campaigns.text.split_parts` (never an escape pair
or a surrogate pair across two parts), unlike ``smpplib.gsm.make_parts``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from campaigns.gateways.base import ReceiptStatus, normalize_carrier_id
from campaigns.text import analyze, split_parts

# --- GSM 03.38 default alphabet, one septet per octet ("unpacked", as SMPP carries it) ----------

_GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT_TABLE = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E}
_GSM7_EXT_TABLE |= {"|": 0x40, "€": 0x65}
_ENCODE = {char: bytes([code]) for code, char in enumerate(_GSM7_BASIC_TABLE) if code != 0x1B}
_ENCODE |= {char: bytes([0x1B, code]) for char, code in _GSM7_EXT_TABLE.items()}
_DECODE_EXT = {code: char for char, code in _GSM7_EXT_TABLE.items()}

DC_DEFAULT = 0  # SMSC default alphabet: GSM 03.38 on almost every carrier
DC_IA5 = 1
DC_LATIN1 = 3
DC_UCS2 = 8

UDHI = 0x40  # esm_class bit: short_message starts with a user data header
ESM_RECEIPT = 0x04  # esm_class message type: SMSC delivery receipt


def gsm7_encode(text: str) -> bytes:
    """Unpacked GSM 03.38 septets; raises ``ValueError`` on a character outside the alphabet."""
    try:
        return b"".join(_ENCODE[char] for char in text)
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not in the GSM 03.38 alphabet") from None


def gsm7_decode(data: bytes) -> str:
    out = []
    escape = False
    for byte in data:
        byte &= 0x7F
        if escape:
            out.append(_DECODE_EXT.get(byte, " "))
            escape = False
        elif byte == 0x1B:
            escape = True
        else:
            out.append(_GSM7_BASIC_TABLE[byte])
    return "".join(out)


# --- addresses -------------------------------------------------------------------------------

TON_UNKNOWN, TON_INTERNATIONAL, TON_NATIONAL, TON_ALPHANUMERIC = 0, 1, 2, 5
NPI_UNKNOWN, NPI_ISDN = 0, 1


def source_address(sender: str) -> tuple[int, int, str]:
    """(ton, npi, addr) for an originator: alphanumeric, international (+E.164 / 00...) or national."""
    sender = sender.strip()
    digits = sender.replace(" ", "")
    if digits.startswith("+") and digits[1:].isdigit():
        return TON_INTERNATIONAL, NPI_ISDN, digits[1:]
    if digits.startswith("00") and digits.isdigit():
        return TON_INTERNATIONAL, NPI_ISDN, digits[2:]
    if digits.isdigit():
        return TON_NATIONAL, NPI_ISDN, digits
    return TON_ALPHANUMERIC, NPI_UNKNOWN, sender[:11]


def destination_address(number: str) -> tuple[int, int, str]:
    """(ton, npi, addr) for an E.164 recipient (our numbers are always stored as E.164)."""
    if number.startswith("+"):
        return TON_INTERNATIONAL, NPI_ISDN, number[1:]
    return TON_UNKNOWN, NPI_ISDN, number


def to_e164(addr: str, ton: int) -> str:
    """An inbound address as we store numbers: international ones get their ``+``."""
    addr = addr.strip()
    if ton == TON_INTERNATIONAL or (addr.isdigit() and len(addr) > 8 and not addr.startswith("0")):
        return "+" + addr.lstrip("+")
    return addr


# --- message parts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedMessage:
    data_coding: int
    esm_class: int
    parts: list[bytes]  # each one short_message, UDH included for a concatenated message


def _udh(ref: int, total: int, seq: int) -> bytes:
    return bytes([0x05, 0x00, 0x03, ref & 0xFF, total, seq])


def encode_message(text: str, *, default_data_coding: int = DC_DEFAULT, ref: int = 0) -> EncodedMessage:
    """Encode ``text`` as one or more ``short_message`` values with a concatenation UDH.

    GSM-7 texts use the route's ``default_data_coding``: 0 sends unpacked GSM 03.38 septets (160 /
    153 per part, split by :func:`campaigns.text.split_parts`); 1 (IA5) and 3 (Latin-1) send one
    octet per character (140 / 134 per part) and fall back to UCS-2 when a character has no octet
    in that charset (``€`` in Latin-1). Other texts are UCS-2 (UTF-16BE, 70 / 67 units).
    """
    info = analyze(text)
    if info.encoding == "GSM-7" and default_data_coding == DC_DEFAULT:
        texts = split_parts(text) or [""]
        payloads = [gsm7_encode(chunk) for chunk in texts]
        data_coding = DC_DEFAULT
    elif info.encoding == "GSM-7" and default_data_coding in (DC_IA5, DC_LATIN1):
        charset = "ascii" if default_data_coding == DC_IA5 else "latin-1"
        try:
            raw = split_parts(text)
            whole = "".join(raw).encode(charset)
        except UnicodeEncodeError:
            return encode_message(text, default_data_coding=DC_UCS2, ref=ref)
        size = 140 if len(whole) <= 140 else 134
        payloads = [whole[i : i + size] for i in range(0, len(whole), size)] or [b""]
        data_coding = default_data_coding
    else:
        texts = split_parts(text) if info.encoding == "UCS-2" else _split_ucs2(text)
        payloads = [chunk.encode("utf-16-be") for chunk in texts or [""]]
        data_coding = DC_UCS2
    if len(payloads) == 1:
        return EncodedMessage(data_coding, 0, payloads)
    total = len(payloads)
    return EncodedMessage(
        data_coding, UDHI, [_udh(ref, total, seq) + payload for seq, payload in enumerate(payloads, 1)]
    )


def _split_ucs2(text: str) -> list[str]:
    """UCS-2 parts of a GSM-7 text forced into UCS-2 (it has no surrogate pairs: no emoji)."""
    if len(text) <= 70:
        return [text] if text else []
    return [text[i : i + 67] for i in range(0, len(text), 67)]


def decode_short_message(data: bytes, *, data_coding: int, esm_class: int) -> str:
    """Text of an inbound ``short_message`` (UDH stripped); data_coding 0, 1, 3 and 8 are decoded."""
    if esm_class & UDHI and data:
        data = data[data[0] + 1 :]
    coding = data_coding & 0x0F if data_coding & 0xF0 in (0x00, 0xF0) else data_coding
    if coding == DC_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding == DC_LATIN1:
        return data.decode("latin-1")
    if coding == DC_IA5:
        return data.decode("ascii", errors="replace")
    return gsm7_decode(data)


def concat_info(data: bytes, esm_class: int) -> tuple[int, int, int] | None:
    """(reference, total, sequence) from a concatenation UDH (8- or 16-bit reference), if any."""
    if not (esm_class & UDHI) or not data:
        return None
    header, i = data[1 : data[0] + 1], 0
    while i + 1 < len(header):
        iei, length = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + length]
        if iei == 0x00 and length == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and length == 4:
            return (value[0] << 8) | value[1], value[2], value[3]
        i += 2 + length
    return None


# --- PDUs on the hot path (smpplib builds and parses the others) --------------------------------

GENERIC_NACK = 0x80000000
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015


def pdu(command_id: int, sequence: int, body: bytes, status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def _cstring(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def submit_sm_body(
    *,
    source_addr_ton: int,
    source_addr_npi: int,
    source_addr: str,
    dest_addr_ton: int,
    dest_addr_npi: int,
    destination_addr: str,
    esm_class: int,
    data_coding: int,
    registered_delivery: int,
    short_message: bytes,
) -> bytes:
    """A submit_sm body (SMPP 3.4 section 4.4.1): empty service_type, schedule and validity."""
    return b"".join(
        (
            b"\0",  # service_type
            bytes((source_addr_ton, source_addr_npi)),
            _cstring(source_addr),
            bytes((dest_addr_ton, dest_addr_npi)),
            _cstring(destination_addr),
            bytes((esm_class, 0, 0)),  # esm_class, protocol_id, priority_flag
            b"\0\0",  # schedule_delivery_time, validity_period
            bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )


TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424


@dataclass(frozen=True)
class DeliverSm:
    source_addr_ton: int
    source_addr: str
    dest_addr_ton: int
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes  # or message_payload when short_message is empty
    receipted_message_id: str | None
    message_state: int | None


def parse_deliver_sm(raw: bytes) -> DeliverSm:
    """Decode a deliver_sm PDU (SMPP 3.4 section 4.6.1) with its TLVs; unknown TLVs are skipped."""
    offset = 16

    def cstring() -> str:
        nonlocal offset
        end = raw.index(b"\0", offset)
        value = raw[offset:end].decode("latin-1")
        offset = end + 1
        return value

    cstring()  # service_type
    source_ton = raw[offset]
    offset += 2
    source = cstring()
    dest_ton = raw[offset]
    offset += 2
    destination = cstring()
    esm_class = raw[offset]
    offset += 3
    cstring()  # schedule_delivery_time
    cstring()  # validity_period
    data_coding, length = raw[offset + 2], raw[offset + 4]
    offset += 5
    short_message = raw[offset : offset + length]
    offset += length
    receipted, state = None, None
    while offset + 4 <= len(raw):
        tag, size = struct.unpack_from(">HH", raw, offset)
        value = raw[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if tag == TLV_RECEIPTED_MESSAGE_ID:
            receipted = value.split(b"\0", 1)[0].decode("latin-1")
        elif tag == TLV_MESSAGE_STATE and value:
            state = value[0]
        elif tag == TLV_MESSAGE_PAYLOAD and not short_message:
            short_message = value
    return DeliverSm(source_ton, source, dest_ton, destination, esm_class, data_coding, short_message, receipted, state)


# --- command_status (SMPP 3.4 section 5.1.3) ----------------------------------------------------

STATUS_NAMES = {
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x43: "ESME_RINVESMCLASS",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
}
THROTTLING = frozenset({0x14, 0x58})
"""Statuses that mean "slow down": the connector backs off and resubmits the part itself."""
RETRYABLE = THROTTLING | {0x04, 0x08, 0x45, 0x64, 0xFE, 0xFF}
"""Temporary failures (bind state, system error, submit failed, temporary app error, unknown)."""
AUTH_FAILURES = frozenset({0x0D, 0x0E, 0x0F, 0x53})


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


def is_retryable(status: int) -> bool:
    """Whether a failed submit may succeed later; everything not listed (bad address...) is permanent."""
    return status in RETRYABLE


# --- delivery receipts -------------------------------------------------------------------------


def carrier_id_variants(raw: str | bytes | None) -> list[str]:
    """The normalised id, then its decimal-as-hex and hex-as-decimal readings when they exist."""
    value = normalize_carrier_id(raw)
    variants = [value]
    if value.isdigit():
        variants.append(format(int(value), "x"))
    if value and re.fullmatch(r"[0-9a-f]+", value) and len(value) <= 16:
        variants.append(str(int(value, 16)))
    return list(dict.fromkeys(variants))


_STAT_TO_STATUS = {
    "DELIVRD": ReceiptStatus.RECEIVED,
    "ACCEPTD": ReceiptStatus.DELIVERED_OPERATOR,
    "ENROUTE": ReceiptStatus.DELIVERED_OPERATOR,
    "EXPIRED": ReceiptStatus.EXPIRED,
    "UNDELIV": ReceiptStatus.HANDSET_PERMANENT,
    "REJECTD": ReceiptStatus.REJECTED,
    "DELETED": ReceiptStatus.OPERATOR_PERMANENT,
    "UNKNOWN": ReceiptStatus.OPERATOR_TEMPORARY,
}
# message_state TLV values (SMPP 3.4 section 5.2.28)
_STATE_TO_STAT = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN"}
_STATE_TO_STAT[8] = "REJECTD"

_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text):(\S*)", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedReceipt:
    carrier_id: str  # as the carrier wrote it (normalise before matching)
    stat: str
    status: ReceiptStatus
    error: str
    at: datetime


def _parse_date(value: str) -> datetime | None:
    if len(value) not in (10, 12) or not value.isdigit():
        return None
    fields = [int(value[i : i + 2]) for i in range(0, len(value), 2)]
    try:
        return datetime(2000 + fields[0], *fields[1:], tzinfo=UTC)
    except ValueError:
        return None


def parse_receipt(
    text: str, *, receipted_message_id: str | bytes | None = None, message_state: int | None = None
) -> ParsedReceipt | None:
    """A delivery receipt from the TLVs when present, else from the ``id:... stat:...`` text.

    Returns ``None`` when neither carries an id. ``err`` (three digits, carrier-specific) is kept
    as the error text for anything but a delivery.
    """
    fields = {key.lower(): value for key, value in _RECEIPT_FIELD.findall(text or "")}
    tlv_id = receipted_message_id.decode("ascii", "replace") if isinstance(receipted_message_id, bytes) else None
    carrier_id = (tlv_id or receipted_message_id or fields.get("id") or "").strip("\x00 ")
    if not carrier_id:
        return None
    stat = (fields.get("stat") or _STATE_TO_STAT.get(message_state or 0, "UNKNOWN")).upper()
    if message_state in _STATE_TO_STAT and not fields.get("stat"):
        stat = _STATE_TO_STAT[message_state]
    status = _STAT_TO_STATUS.get(stat, ReceiptStatus.OPERATOR_TEMPORARY)
    err = fields.get("err", "")
    error = "" if status in (ReceiptStatus.RECEIVED, ReceiptStatus.DELIVERED_OPERATOR) else f"{stat} err:{err or '000'}"
    at = _parse_date(fields.get("done date", "")) or datetime.now(UTC)
    return ParsedReceipt(carrier_id=carrier_id, stat=stat, status=status, error=error, at=at)
