"""Carrier-callback endpoint benchmark (PERF.md): our signed endpoint against a minimal
push-to-Redis Django view, both under the same gunicorn (2 workers), same client.

Also measures how long a receipt takes to become visible as the message's status (p95), with a
Celery worker consuming the flush tasks. Needs PostgreSQL and Redis::

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


def run(ctx=None) -> dict[str, dict]:
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
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "smsplatform", "worker", "-Q", "sending", "-c", "1", "-l", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        bodies = [json.dumps({"receipts": [{"id": f"c{i:x}", "status": "delivered_operator"}]}).encode()
                  for i in range(requests)]  # fmt: skip
        baseline = _load("/bench/push", bodies)
        start = time.perf_counter()
        ours = _load("/sms/carrier/default/callback", bodies)
        # Visibility: poll until every message shows the receipt's status.
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT count(*) FROM campaigns_message WHERE campaign_id = %s AND status = 40",
                               [campaign.pk])  # fmt: skip
                if cursor.fetchone()[0] >= requests or time.perf_counter() - start > 120:
                    break
                time.sleep(0.1)
        visible_after_last_s = time.perf_counter() - start - requests / ours
        ratio = ours / baseline
        return {
            "receipt_endpoint": {"value": round(ours), "unit": "requests/s", "baseline": round(baseline),
                                 "ratio": round(ratio, 3), "target": 0.7, "pass": ratio >= 0.7},
            "receipt_visible": {"value": round(max(visible_after_last_s, 0), 2), "unit": "s after the last post",
                                "baseline": None, "ratio": None, "target": 2.0, "pass": visible_after_last_s <= 2.0},
        }  # fmt: skip
    finally:
        for process in (server, worker):
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
