import threading
import time

import pytest
from django.db import connection

from campaigns import pipeline, ratelimit
from campaigns.models import Campaign

from .pipeline_support import fr, make_campaign


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_dispatchers_never_claim_the_same_campaign(require_postgres, user):
    campaigns = [make_campaign(user, numbers=[fr(i)]) for i in range(40)]
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]

    def dispatcher(slot):
        try:
            barrier.wait()
            while ids := pipeline.campaign_claim_due(limit=3):
                claimed[slot].extend(ids)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(c.pk for c in campaigns)
    assert set(Campaign.objects.values_list("status", flat=True)) == {Campaign.Status.DISPATCHING}


@pytest.mark.django_db
def test_claim_is_conditional_so_a_second_dispatch_claims_nothing(user):
    make_campaign(user, numbers=[fr(1)])
    assert len(pipeline.campaign_claim_due()) == 1
    assert pipeline.campaign_claim_due() == []


def _measure_rate(alias, rate, messages, chunk=5):
    start = time.monotonic()
    for _ in range(messages // chunk):
        ratelimit.acquire(alias=alias, rate=rate, count=chunk)
    return time.monotonic() - start


def test_local_rate_cap_holds(settings):
    settings.CELERY_BROKER_URL = "filesystem://"
    # burst of one second (20), then 40 more at 20/s: about 2 s.
    elapsed = _measure_rate(f"local-{time.time_ns()}", 20, 60)
    assert 1.7 <= elapsed <= 3.0


def test_redis_rate_cap_is_shared_by_workers(redis_url, settings, monkeypatch):
    monkeypatch.setattr(ratelimit, "_redis_client", None)
    monkeypatch.setattr(ratelimit, "_script", None)
    alias = f"shared-{time.time_ns()}"
    results = []
    threads = [threading.Thread(target=lambda: results.append(_measure_rate(alias, 30, 45))) for _ in range(2)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 90 messages at 30/s with a 30-message burst: about 2 s for both together, not 1.
    assert 1.7 <= time.monotonic() - start <= 3.5
