"""Receipt application benchmark (PERF.md): ``apply_carrier_events`` against a raw UPDATE ... FROM unnest.

N sent messages; N receipts of which 30% are duplicates or arrive out of order (a late
"delivered to operator" after "received"). Baseline: the same rows applied by one raw
``UPDATE ... FROM unnest`` per 5,000 keyed by carrier id. Gates: the final statuses are the
forward-only ones, and replaying every receipt changes 0 rows.

    DEBUG=1 DATABASE_URL=postgres://... python bench/bench_receipts.py --size 100000
"""

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")

BATCH = 5000


def _prepare(size):
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from campaigns.models import Campaign

    now = timezone.now()
    user = User.objects.create_user(f"benchr{time.time_ns()}", email="bench@example.com", password="x")
    campaign = Campaign.objects.create(account=user, text="x", status="sending")
    lines = "".join(
        f"{campaign.pk}\t{user.pk}\t+336{i:08d}\tFR\tx\t1\t1\t30\t\tdefault\t0\t{now.isoformat()}\tc{i:x}\n"
        for i in range(size)
    )
    with connection.cursor() as cursor:
        cols = (
            "campaign_id, account_id, phone, region, text, parts, credits, status, error, gateway, attempts, created_at"
        )
        with cursor.copy(f"COPY campaigns_message ({cols}, carrier_id) FROM STDIN") as copy:
            copy.write(lines.encode())
        cursor.execute("ANALYZE campaigns_message")
    return user, campaign


def _receipts(size):
    from django.utils import timezone

    from campaigns.gateways import Receipt, ReceiptStatus

    rng = random.Random(42)
    now = timezone.now()
    final = [ReceiptStatus.RECEIVED if i % 10 else ReceiptStatus.HANDSET_PERMANENT for i in range(size)]
    receipts = [Receipt(f"c{i:x}", final[i], now) for i in range(size)]
    extra = int(size * 0.3)
    for i in rng.sample(range(size), extra):  # 30%: a duplicate or a late, lower status
        receipts.append(Receipt(f"c{i:x}", rng.choice([final[i], ReceiptStatus.DELIVERED_OPERATOR]), now))
    rng.shuffle(receipts)
    return receipts, final


def _reset(campaign):
    from campaigns.models import Message

    Message.objects.filter(campaign=campaign).update(status=30, error="", status_at=None)


def _raw(receipts):
    from django.db import connection

    from campaigns.receipts import RECEIPT_RANK

    start = time.perf_counter()
    with connection.cursor() as cursor:
        for s in range(0, len(receipts), BATCH):
            chunk = receipts[s : s + BATCH]
            cursor.execute(
                "UPDATE campaigns_message AS m SET status = v.status, status_at = v.at "
                "FROM unnest(%s::varchar[], %s::smallint[], %s::timestamptz[]) AS v(carrier_id, status, at) "
                "WHERE m.gateway = 'default' AND m.carrier_id = v.carrier_id",
                [[r.carrier_id for r in chunk], [RECEIPT_RANK[r.status] for r in chunk], [r.at for r in chunk]],
            )
    return time.perf_counter() - start


def _app(receipts):
    from campaigns.gateways import CarrierEvents
    from campaigns.receipts import apply_carrier_events

    start = time.perf_counter()
    apply_carrier_events(gateway_alias="default", events=CarrierEvents(receipts=receipts))
    return time.perf_counter() - start


def run(ctx=None) -> dict[str, dict]:
    import django

    django.setup()
    from django.db import connection

    from campaigns.models import Message

    size = int((ctx or {}).get("size", 100_000)) if isinstance(ctx, dict) else int(getattr(ctx, "size", 100_000))
    user, campaign = _prepare(size)
    try:
        receipts, final = _receipts(size)
        pairs = []
        for _ in range(3):  # interleaved A/B pairs, median ratio
            _reset(campaign)
            raw_s = _raw(receipts)
            _reset(campaign)
            app_s = _app(receipts)
            pairs.append((raw_s, app_s))
        ratios = sorted(raw / app for raw, app in pairs)
        statuses = dict(Message.objects.filter(campaign=campaign).values_list("phone", "status"))
        from campaigns.receipts import RECEIPT_RANK

        correct = all(statuses[f"+336{i:08d}"] == RECEIPT_RANK[final[i]] for i in range(size))
        with connection.cursor() as cursor:
            cursor.execute("SELECT md5(string_agg(status || ':' || coalesce(status_at::text, ''), ',' ORDER BY id)) "
                           "FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])  # fmt: skip
            before = cursor.fetchone()[0]
            _app(receipts)
            cursor.execute("SELECT md5(string_agg(status || ':' || coalesce(status_at::text, ''), ',' ORDER BY id)) "
                           "FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])  # fmt: skip
            replay_unchanged = before == cursor.fetchone()[0]
        app_s = sorted(a for _r, a in pairs)[1]
        raw_s = sorted(r for r, _a in pairs)[1]
        return {
            "receipts_apply": {"value": round(len(receipts) / app_s), "unit": "receipts/s",
                               "baseline": round(len(receipts) / raw_s), "ratio": round(ratios[1], 3),
                               "spread": [round(ratios[0], 3), round(ratios[-1], 3)], "target": 0.5,
                               "pass": ratios[1] >= 0.5},
            "receipts_gates": {"value": {"forward_only": correct, "replay_changes_0_rows": replay_unchanged},
                               "unit": "", "baseline": None, "ratio": None, "target": "all true",
                               "pass": correct and replay_unchanged},
        }  # fmt: skip
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])
            cursor.execute("DELETE FROM campaigns_pendingreceipt")
            cursor.execute("DELETE FROM campaigns_campaign WHERE id = %s", [campaign.pk])
            cursor.execute("DELETE FROM accounts_user WHERE id = %s", [user.pk])


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"results": run({"size": 100_000 if args.quick else args.size})}, indent=2, default=str))
