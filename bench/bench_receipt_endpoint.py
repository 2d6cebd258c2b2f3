"""Carrier-callback endpoint benchmark (PERF.md): our signed endpoint against a minimal
push-to-Redis Django view, both under the same gunicorn (2 workers), same client.

Acceptance is measured in interleaved pairs with no worker applying receipts; then, with a Celery
worker consuming the flush tasks, how long a receipt takes to become visible as the message's
status (p95 over bursts). Needs PostgreSQL and Redis::

    DEBUG=1 DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://.../1 \
        python bench/bench_receipt_endpoint.py --requests 3000
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")
PORT = int(os.environ.get("BENCH_PORT", "8151"))
SECRET = "bench-callback-secret"

# The baseline view, served by the same gunicorn through this module as ROOT_URLCONF.
try:
    from django.http import HttpResponse
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def minimal_push(request):
        from campaigns.receipts import _callback_redis

        _callback_redis().rpush("smsplatform:bench:minimal", request.body)
        return HttpResponse("{}", content_type="application/json")

    urlpatterns = [path("bench/push", minimal_push), path("", include("smsplatform.urls"))]
except Exception:  # imported before Django is configured: only run() is used then
    urlpatterns = []


def _server(env):
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "smsplatform.wsgi", "-w", "2", "-b", f"127.0.0.1:{PORT}",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip


def _load(path, bodies, threads=8):
    """POST every body (signed) with keep-alive clients; return requests/s."""
    from campaigns.receipts import callback_sign

    chunks = [bodies[i::threads] for i in range(threads)]

    def worker(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", PORT)
        for body in chunk:
            ts = int(time.time())
            headers = {"Content-Type": "application/json", "X-Sms-Timestamp": str(ts),
                       "X-Sms-Signature": callback_sign(body=body, timestamp=ts, secret=SECRET)}  # fmt: skip
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(bodies) / (time.perf_counter() - start)


PAIRS = 3
BURSTS = 20
BURST = 50


def _visible_p95(campaign_id: int, bursts: list[list[bytes]], ids: list[list[int]]) -> float:
    """Post each burst, then poll until every message of it shows "received"; return the p95 of
    the seconds from a burst's last post to its statuses being visible."""
    from django.db import connection

    latencies = []
    for burst, burst_ids in zip(bursts, ids, strict=True):
        _load("/sms/carrier/default/callback", burst, threads=2)
        posted = time.perf_counter()
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT count(*) FROM campaigns_message WHERE campaign_id = %s AND status = 60 AND id = ANY(%s)",
                    [campaign_id, burst_ids],
                )
                if cursor.fetchone()[0] >= len(burst_ids) or time.perf_counter() - posted > 30:
                    break
                time.sleep(0.01)
        latencies.append(time.perf_counter() - posted)
        time.sleep(0.1)
    latencies.sort()
    return latencies[max(0, int(round(0.95 * len(latencies))) - 1)]


def run(ctx=None) -> dict[str, dict]:
    """Acceptance: our endpoint vs the minimal view, interleaved A B A B A B with no worker
    applying receipts (so neither side competes with PostgreSQL for the two cores), median of the
    per-pair ratios. Visibility: then a Celery worker runs and bursts of "received" receipts are
    posted; p95 of the seconds until a burst's statuses are visible."""
    import statistics

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    sys.path.insert(0, str(ROOT / "bench"))
    import bench_receipts

    requests = int((ctx or {}).get("requests", 3000)) if isinstance(ctx, dict) else 3000
    user, campaign = bench_receipts._prepare(requests)
    db = settings.DATABASES["default"]
    env = {**os.environ, "SMS_CALLBACK_SECRET": SECRET, "DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50,
           "SECURE_SSL_REDIRECT": "0", "ROOT_URLCONF_BENCH": "1",
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
           "DJANGO_SETTINGS_MODULE": "bench.endpoint_settings"}  # fmt: skip
    server = _server(env)
    worker = None
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        bodies = [json.dumps({"receipts": [{"id": f"c{i:x}", "status": "delivered_operator"}]}).encode()
                  for i in range(requests)]  # fmt: skip
        pairs = [(_load("/bench/push", bodies), _load("/sms/carrier/default/callback", bodies)) for _ in range(PAIRS)]
        ratios = [ours / baseline for baseline, ours in pairs]
        ratio = statistics.median(ratios)

        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "smsplatform", "worker", "-Q", "sending", "-c", "1", "-l",
             "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        with connection.cursor() as cursor:  # the acceptance runs' receipts, applied by the worker
            for _ in range(1200):
                cursor.execute("SELECT count(*) FROM campaigns_message WHERE campaign_id = %s AND status = 40",
                               [campaign.pk])  # fmt: skip
                if cursor.fetchone()[0] >= requests:
                    break
                time.sleep(0.1)
            cursor.execute("SELECT id, carrier_id FROM campaigns_message WHERE campaign_id = %s ORDER BY id",
                           [campaign.pk])  # fmt: skip
            messages = cursor.fetchall()[: BURSTS * BURST]
        bursts = [
            [json.dumps({"receipts": [{"id": carrier_id, "status": "received"}]}).encode()
             for _mid, carrier_id in messages[k : k + BURST]]
            for k in range(0, len(messages), BURST)
        ]  # fmt: skip
        ids = [[mid for mid, _c in messages[k : k + BURST]] for k in range(0, len(messages), BURST)]
        visible_p95 = _visible_p95(campaign.pk, bursts, ids)
        baseline = statistics.median(b for b, _o in pairs)
        ours = statistics.median(o for _b, o in pairs)
        return {
            "receipt_endpoint": {"value": round(ours), "unit": "requests/s", "baseline": round(baseline),
                                 "ratio": round(ratio, 3), "target": 0.7, "pass": ratio >= 0.7,
                                 "spread": [round(min(ratios), 3), round(max(ratios), 3)]},
            "receipt_visible": {"value": round(visible_p95, 2), "unit": "s p95 from post to status visible",
                                "baseline": None, "ratio": None, "target": 2.0, "pass": visible_p95 <= 2.0,
                                "bursts": len(bursts)},
        }  # fmt: skip
    finally:
        for process in (server, worker):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(20)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])
            cursor.execute("DELETE FROM campaigns_campaign WHERE id = %s", [campaign.pk])
            cursor.execute("DELETE FROM accounts_user WHERE id = %s", [user.pk])


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"results": run({"requests": args.requests})}, indent=2, default=str))
