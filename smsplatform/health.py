"""Liveness of the platform's parts, for /healthz and the admin index."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Heartbeat


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def heartbeat_record(*, name: str) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, connection.vendor)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return Check("database", False, str(exc))


def check_broker() -> Check:
    from smsplatform.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return Check("broker", True, conn.transport.driver_type)
    except Exception as exc:  # noqa: BLE001
        return Check("broker", False, str(exc))


def check_beat(now: datetime | None = None) -> Check:
    now = now or timezone.now()
    try:
        beat = Heartbeat.objects.filter(name="beat").first()
    except Exception as exc:  # noqa: BLE001
        return Check("worker_and_beat", False, str(exc))
    if beat is None:
        return Check("worker_and_beat", False, "no tick recorded yet")
    age = (now - beat.at).total_seconds()
    ok = age <= settings.HEARTBEAT_MAX_AGE.total_seconds()
    return Check("worker_and_beat", ok, f"last tick {beat.at.isoformat()} ({age:.0f} s ago)")


def run_checks() -> list[Check]:
    return [check_database(), check_broker(), check_beat()]
