"""The carrier gateway interface (GW-1), modelled on Django's email backends.

A backend turns our outgoing messages into carrier submissions and carrier events back into
``Receipt`` and ``InboundSMS`` values. Everything crossing the boundary is a frozen dataclass;
a temporary carrier failure is a ``TemporaryGatewayError`` (retry with backoff), a permanent
one a ``PermanentGatewayError`` (give up, refund).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class MessageKind(StrEnum):
    SMS = "sms"
    VOICE = "voice"


class ReceiptStatus(StrEnum):
    """What a carrier reports about a submitted message (SND-15)."""

    DELIVERED_OPERATOR = "delivered_operator"
    RECEIVED = "received"
    EXPIRED = "expired"
    REJECTED = "rejected"
    OPERATOR_TEMPORARY = "operator_temporary"
    OPERATOR_PERMANENT = "operator_permanent"
    HANDSET_TEMPORARY = "handset_temporary"
    HANDSET_PERMANENT = "handset_permanent"
    ANTISPAM = "antispam"


@dataclass(frozen=True)
class OutgoingSMS:
    """One message to submit. ``ref`` is our id for it; results and receipts come back keyed by it
    (results) or by the carrier id the result carries (receipts)."""

    ref: str
    to: str  # E.164
    text: str
    sender: str = ""  # "" = the gateway's own number, so the recipient can reply (SND-8)
    kind: MessageKind = MessageKind.SMS


@dataclass(frozen=True)
class SendResult:
    ref: str
    accepted: bool
    carrier_id: str | None = None
    parts: int = 1
    error: str = ""
    retryable: bool = False


@dataclass(frozen=True)
class Receipt:
    carrier_id: str
    status: ReceiptStatus
    at: datetime
    error: str = ""
    part: int | None = None  # 1-based part number for per-part receipts of a long SMS


@dataclass(frozen=True)
class InboundSMS:
    sender: str  # E.164 of the handset that replied
    recipient: str  # our number it was sent to
    text: str
    at: datetime
    carrier_id: str = ""


@dataclass(frozen=True)
class CarrierEvents:
    receipts: list[Receipt] = field(default_factory=list)
    inbound: list[InboundSMS] = field(default_factory=list)


def normalize_carrier_id(raw: str | int | bytes | None, *, decimal: bool = False) -> str:
    """The canonical form of a carrier message id, used both when recording and when matching (SND-15).

    Trimmed (NULs too), lower case, leading zeros removed (``"00A1F"`` -> ``"a1f"``). Carriers that
    report in decimal an id they returned in hex (SMPP receipts often do): pass ``decimal=True``
    (or an ``int``) and the value is converted to hex (``"41503"`` -> ``"a21f"``).
    """
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if isinstance(raw, int) or decimal:
        return format(int(str(raw).strip()), "x")
    value = (raw or "").strip().strip("\x00").lower()
    return value.lstrip("0") or ("0" if value else "")


class GatewayError(Exception):
    pass


class TemporaryGatewayError(GatewayError):
    """The carrier could not take the messages now (throttled, down, timeout): retry later."""


class PermanentGatewayError(GatewayError):
    """The carrier will never take these messages (bad credentials, unsupported kind)."""


class BaseGateway:
    """Base class for SMS gateway backends.

    Subclasses implement ``send_messages``. ``open``/``close`` manage a connection when the
    backend has one; the instance is a context manager. Capabilities are class attributes,
    overridable per alias in ``OPTIONS`` (``RATE`` messages per second, 0 = no cap).
    """

    supports_voice: bool = False
    supports_replies: bool = True

    def __init__(self, alias: str = "default", **options):
        self.alias = alias
        self.options = options
        self.rate: float = float(options.get("RATE", 0) or 0)
        self.supports_voice = options.get("SUPPORTS_VOICE", self.supports_voice)

    def open(self) -> None:
        """Open a connection to the carrier if the backend needs one."""

    def close(self) -> None:
        """Close the connection opened by ``open``."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def send_messages(self, messages: Sequence[OutgoingSMS]) -> list[SendResult]:
        """Submit the messages; return one ``SendResult`` per message, in order.

        A message the carrier refuses for good comes back ``accepted=False, retryable=False``;
        one it refuses for now ``retryable=True``. Raises ``TemporaryGatewayError`` when nothing
        could be submitted at all and a retry may succeed.
        """
        raise NotImplementedError

    def parse_callback(self, body: bytes, headers: dict[str, str]) -> CarrierEvents:
        """Turn an HTTP callback from the carrier into receipts and inbound messages.

        Backends whose carrier posts receipts implement this; authentication is checked by the
        endpoint before this is called.
        """
        raise NotImplementedError(f"{type(self).__name__} does not receive HTTP callbacks.")
