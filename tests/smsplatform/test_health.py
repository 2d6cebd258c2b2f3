from datetime import timedelta

import pytest
from django.utils import timezone

from smsplatform import health
from smsplatform.models import Heartbeat
from smsplatform.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_is_503_until_beat_ticks(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["worker_and_beat"]["ok"] is False


def test_heartbeat_task_makes_healthz_green(client):
    heartbeat.delay()  # eager in tests: runs the real task body
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_stale_tick_is_reported(client, settings):
    Heartbeat.objects.create(name="beat", at=timezone.now() - settings.HEARTBEAT_MAX_AGE - timedelta(seconds=1))
    check = health.check_beat()
    assert not check.ok and "ago" in check.detail
    assert client.get("/healthz").status_code == 503


def test_healthz_needs_no_login_and_only_get(client):
    assert client.post("/healthz").status_code == 405


def test_admin_index_shows_health_to_staff(client, django_user_model):
    staff = django_user_model.objects.create_superuser("staffer", "s@example.com", "pw-long-enough-1")
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert b"Platform health" in response.content and b"worker_and_beat" in response.content


def test_beat_schedule_is_defined_in_code(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "smsplatform.tasks.heartbeat" in tasks
