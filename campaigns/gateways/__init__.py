"""SMS gateway backends chosen by alias in ``settings.SMS_GATEWAYS`` (like ``CACHES``).

>>> from campaigns.gateways import get_gateway
>>> with get_gateway() as gateway:
...     results = gateway.send_messages([OutgoingSMS(ref="1", to="+33612345678", text="Hello")])
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import (
    BaseGateway,
    CarrierEvents,
    GatewayError,
    InboundSMS,
    MessageKind,
    OutgoingSMS,
    PermanentGatewayError,
    Receipt,
    ReceiptStatus,
    SendResult,
    TemporaryGatewayError,
)

__all__ = [
    "BaseGateway",
    "CarrierEvents",
    "GatewayError",
    "InboundSMS",
    "MessageKind",
    "OutgoingSMS",
    "PermanentGatewayError",
    "Receipt",
    "ReceiptStatus",
    "SendResult",
    "TemporaryGatewayError",
    "get_gateway",
]


def get_gateway(alias: str = "default") -> BaseGateway:
    """A new backend instance for ``alias``, read from settings at call time (never at import)."""
    try:
        config = settings.SMS_GATEWAYS[alias]
    except KeyError:
        raise ImproperlyConfigured(f"No SMS gateway {alias!r} in settings.SMS_GATEWAYS.") from None
    backend = import_string(config["BACKEND"])
    return backend(alias=alias, **config.get("OPTIONS", {}))
