"""Where the SMPP connector and the sending workers meet: Redis keys and the link's health.

The connector is the only process bound to the carrier; workers hand it batches through Redis.
Its state (bound, reconnecting, auth_failed...) is kept in a Redis hash so the admin's gateway
health view can show it (``gateway_status(alias)``) without a table of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings

PREFIX = "smsplatform:smpp"


class State:
    STARTING = "starting"
    BOUND = "bound"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"
    UNKNOWN = "unknown"  # the connector never ran for this alias


def key(alias: str, name: str) -> str:
    return f"{PREFIX}:{alias}:{name}"


def gateway_options(alias: str) -> dict:
    return dict(settings.SMS_GATEWAYS.get(alias, {}).get("OPTIONS", {}))


def redis_client(options: dict) -> redis.Redis:
    return _client_for(options.get("REDIS_URL") or settings.CELERY_BROKER_URL)


@functools.cache
def _client_for(url: str) -> redis.Redis:
    """One pool per URL per process: workers call ``send_messages`` once per batch."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, health_check_interval=30)


@dataclass(frozen=True)
class GatewayStatus:
    """The SMPP link of one gateway alias, as the connector last recorded it."""

    alias: str
    state: str
    detail: str = ""
    updated_at: datetime | None = None
    last_submit_at: datetime | None = None
    last_error: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == State.BOUND


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def gateway_status(alias: str, *, client: redis.Redis | None = None) -> GatewayStatus:
    """The recorded state of the ``alias`` connector (``State.UNKNOWN`` if it never ran)."""
    client = client or redis_client(gateway_options(alias))
    data = client.hgetall(key(alias, "status"))
    if not data:
        return GatewayStatus(alias=alias, state=State.UNKNOWN, detail="The SMPP connector has not started.")
    return GatewayStatus(
        alias=alias,
        state=data.get("state", State.UNKNOWN),
        detail=data.get("detail", ""),
        updated_at=_when(data.get("updated_at")),
        last_submit_at=_when(data.get("last_submit_at")),
        last_error=data.get("last_error", ""),
    )


def record_status(client: redis.Redis, alias: str, **fields: str) -> None:
    """Merge ``fields`` into the alias's status hash, stamping ``updated_at``."""
    client.hset(key(alias, "status"), mapping={**fields, "updated_at": datetime.now(UTC).isoformat()})
