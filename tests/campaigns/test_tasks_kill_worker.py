"""Exactly-once submission with real Celery workers on Redis, one of them SIGKILLed mid-campaign."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from campaigns import pipeline, tasks
from campaigns.models import Campaign, Message
from campaigns.receipts import normalize_carrier_id

from .pipeline_support import expand, fr, fund, make_campaign, make_rates

ROOT = Path(__file__).resolve().parents[2]
COUNT = 1000


def start_worker(env, name):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "smsplatform", "worker", "-Q", "sending,default", "-c", "2",
         "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(message)


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_campaign_then_every_message_is_sent_exactly_once(require_postgres, redis_url, user):
    from smsplatform.celery import app

    db = django_settings.DATABASES["default"]
    key = f"killtest:{os.getpid()}:{time.time_ns()}"
    client = redis.Redis.from_url(redis_url)
    client.delete("sending", "default")  # stale messages of earlier runs
    gateways = {
        "default": {
            "BACKEND": "tests.campaigns.recording_gateway.Gateway",
            "OPTIONS": {"REDIS_URL": redis_url, "KEY": key, "SLEEP": 0.004},
        }
    }
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": redis_url,
        "SMS_GATEWAYS": json.dumps(gateways),
        "SMS_SUBMIT_LEASE_SECONDS": "3",
        "SECRET_KEY": "kill-test-" + "x" * 40,
        "DEBUG": "0",
    }
    make_rates()
    fund(user, "5000")
    campaign = make_campaign(user, numbers=[fr(i) for i in range(1, COUNT + 1)], status="dispatching")
    batches = expand(campaign)

    app.conf.task_always_eager = False
    workers = []
    try:
        workers.append(start_worker(env, "first"))
        for first_id, last_id in batches:
            tasks.submit_batch.delay(campaign.pk, first_id, last_id)
        wait_for(lambda: client.llen(f"{key}:calls") >= 300, 90, "the first worker never started submitting")
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait(10)
        in_flight = Message.objects.filter(campaign=campaign, status=Message.Status.SUBMITTING).count()
        assert in_flight > 0, "the kill should land mid-campaign"

        workers.append(start_worker(env, "second"))
        time.sleep(3.5)  # past the lease: the dead worker's claims are now stale
        tasks.requeue_stale_claims.delay()
        wait_for(
            lambda: not Message.objects.filter(campaign=campaign, carrier_id__isnull=True).exists(),
            90,  # generous: the CI machine's two cores are shared
            "not every message was submitted after the restart",
        )
    finally:
        app.conf.task_always_eager = True
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(20)

    delivered = {int(ref): int(n) for ref, n in client.hgetall(f"{key}:delivered").items()}
    ids = set(Message.objects.filter(campaign=campaign).values_list("id", flat=True))
    assert set(delivered) == ids
    assert set(delivered.values()) == {1}, "a message reached the handset twice"
    calls = [int(ref) for ref in client.lrange(f"{key}:calls", 0, -1)]
    # Resubmissions happen only for what the dead worker had handed to the carrier without
    # recording it: at most one gateway call (SUBMIT_CHUNK messages) per killed process.
    assert len(calls) - len(set(calls)) <= 2 * pipeline.SUBMIT_CHUNK
    recorded = dict(Message.objects.filter(campaign=campaign).values_list("id", "carrier_id"))
    carriers = {int(ref): normalize_carrier_id(cid.decode()) for ref, cid in client.hgetall(f"{key}:carrier").items()}
    assert recorded == carriers
    assert Message.objects.filter(campaign=campaign, status=Message.Status.SENT).count() == COUNT
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    client.delete(*[f"{key}:{suffix}" for suffix in ("calls", "carrier", "delivered", "seen")])
