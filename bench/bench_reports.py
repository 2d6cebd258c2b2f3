"""Receipt report, campaign detail and "Sent SMS" at N messages in one campaign (SND-16, PERF).

Data: account A's campaign of N messages (82% received, 8% sent or delivered to the operator,
0.5% partially received, ~9.5% errors of eight kinds), then newer rows: A's N/500 small
campaigns (N/25 messages) and account B's campaign of N/5 messages. The message-count table
also holds N/40 unsquashed delta rows for the big campaign: what sending N messages through the
pipeline leaves when no squash ran (claims per 500, results per 100, receipts per 5,000).

Each figure is the p95 of the reads the view makes (the same selector calls: campaign, counts,
rows; ``bench_contact_list`` times ``contact_page`` the same way), interleaved with one exact
``SELECT count(*) FROM campaigns_message WHERE account_id = A``; ratio = p95 / median count.
Beside it, ``request_p95_ms`` is the whole request through django.test.Client (session, user,
template), whose queries are counted (<= 6) and checked for OFFSET (none allowed).

Gate ``reports_counts_exact``: the count table equals a GROUP BY over the messages after a
burst of receipts applied by two threads at once (20% of the receipts in both) while two
squashes run in two more threads, again after a squash, and after deleting a campaign's messages.

    DEBUG=1 DATABASE_URL=postgres://... python bench/bench_reports.py --size 100000
"""

from __future__ import annotations

import re
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import count_seconds, p95, page_client, result  # noqa: E402

REPEATS = 40
MAX_QUERIES = 6

# Status by (i * 7919) % 1000: a spread that interleaves every status along the ids.
_STATUS_CASE = """
CASE WHEN k < 820 THEN 60 WHEN k < 850 THEN 30 WHEN k < 900 THEN 40 WHEN k < 905 THEN 50
     WHEN k < 915 THEN 70 WHEN k < 920 THEN 72 WHEN k < 935 THEN 73 WHEN k < 950 THEN 74
     WHEN k < 960 THEN 76 WHEN k < 985 THEN 78 WHEN k < 995 THEN 77 ELSE 79 END
"""
_INSERT = f"""
INSERT INTO campaigns_message (campaign_id, account_id, phone, region, text, parts, credits, status, gateway,
                               carrier_id, error, attempts, created_at, submitted_at, status_at)
SELECT c.id, c.account_id, '+336' || lpad(i::text, 8, '0'), 'FR', 'Bonjour, -20%% ce week-end', 1, 1.000, s.status,
       'default', CASE WHEN s.status NOT IN (70, 72) THEN 'r' || c.id || '-' || i END,
       CASE WHEN s.status >= 70 THEN 'Carrier error ' || s.status ELSE '' END, 1, now(), now(), now()
  FROM campaigns_campaign AS c
 CROSS JOIN generate_series(1, %(per_campaign)s) AS i
 CROSS JOIN LATERAL (SELECT {_STATUS_CASE} AS status FROM (SELECT (i::bigint * 7919) %% 1000 AS k) AS r) AS s
 WHERE c.id = ANY(%(campaigns)s)
 ORDER BY c.id, i
"""


def _campaigns(user, count: int, **fields) -> list[int]:
    from django.utils import timezone

    from campaigns.models import Campaign

    now = timezone.now()
    rows = [
        Campaign(account=user, text="Bonjour, -20% ce week-end", status="done", scheduled_at=now, **fields)
        for _ in range(count)
    ]
    return [c.pk for c in Campaign.objects.bulk_create(rows, batch_size=1000)]


def _messages(conn, campaign_ids: list[int], per_campaign: int) -> None:
    conn.execute(_INSERT, {"campaigns": campaign_ids, "per_campaign": per_campaign})
    conn.execute(
        "UPDATE campaigns_campaign AS c SET recipients_count = %s, credits_debited = %s WHERE c.id = ANY(%s)",
        (per_campaign, per_campaign, campaign_ids),
    )


def _prepare(ctx, account, other):
    size = ctx.size
    big = _campaigns(account, 1)[0]
    small = _campaigns(account, max(20, size // 500))
    theirs = _campaigns(other, 1)[0]
    with ctx.raw_connection() as conn:
        _messages(conn, [big], size)
        _messages(conn, small, 20)
        _messages(conn, [theirs], max(1000, size // 5))
        # A campaign between squashes: zero-sum deltas (sent -> received and back), size/40 rows.
        conn.execute(
            "INSERT INTO campaigns_messagecount (campaign_id, status, count, is_squashed) "
            "SELECT %s, CASE WHEN i %% 2 = 0 THEN 30 ELSE 60 END, CASE WHEN i %% 4 < 2 THEN -1 ELSE 1 END, FALSE "
            "FROM generate_series(0, %s) AS i",
            (big, size // 40 - 1),
        )
        conn.execute("VACUUM ANALYZE campaigns_message")
        conn.execute("VACUUM ANALYZE campaigns_messagecount")
        conn.execute("VACUUM ANALYZE campaigns_campaign")
        deep_id = conn.execute(
            "SELECT id FROM campaigns_message WHERE campaign_id = %s ORDER BY id DESC OFFSET %s LIMIT 1",
            (big, int(size * 0.9)),
        ).fetchone()[0]
        deep_error_id = conn.execute(
            "SELECT id FROM campaigns_message WHERE campaign_id = %s AND status >= 70 ORDER BY id DESC "
            "OFFSET %s LIMIT 1",
            (big, int(size * 0.09)),
        ).fetchone()[0]
        sent_before = conn.execute(
            "SELECT id FROM campaigns_campaign WHERE account_id = %s ORDER BY id DESC OFFSET %s LIMIT 1",
            (account.pk, len(small) * 9 // 10),
        ).fetchone()[0]
    return big, theirs, deep_id, deep_error_id, sent_before


def _counts_match(campaign_ids: list[int]) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT campaign_id, status, sum(count) FROM campaigns_messagecount WHERE campaign_id = ANY(%s) "
            "GROUP BY campaign_id, status HAVING sum(count) <> 0 ORDER BY 1, 2",
            [campaign_ids],
        )
        table = cursor.fetchall()
        cursor.execute(
            "SELECT campaign_id, status, count(*) FROM campaigns_message WHERE campaign_id = ANY(%s) "
            "GROUP BY campaign_id, status ORDER BY 1, 2",
            [campaign_ids],
        )
        return table == cursor.fetchall()


def _concurrent_receipts(big: int) -> dict:
    """Two threads apply overlapping receipts while two threads squash; returns what happened."""
    from django.db import connection, connections
    from django.utils import timezone

    from campaigns.counts import message_counts_squash
    from campaigns.gateways import CarrierEvents, Receipt, ReceiptStatus
    from campaigns.receipts import apply_carrier_events

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT carrier_id FROM campaigns_message WHERE campaign_id = %s AND status IN (30, 40) ORDER BY id", [big]
        )
        cids = [r[0] for r in cursor.fetchall()]
    now = timezone.now()
    cut = len(cids) * 6 // 10
    first = [Receipt(c, ReceiptStatus.RECEIVED if i % 7 else ReceiptStatus.EXPIRED, now) for i, c in enumerate(cids)]
    second = [Receipt(c, ReceiptStatus.HANDSET_PERMANENT if i % 5 == 0 else ReceiptStatus.DELIVERED_OPERATOR, now)
              for i, c in enumerate(cids)]  # fmt: skip
    done, errors, squashes = threading.Event(), [], []

    def apply(receipts):
        try:
            for start in range(0, len(receipts), 2000):
                apply_carrier_events(
                    gateway_alias="default", events=CarrierEvents(receipts=receipts[start : start + 2000])
                )
        except Exception as exc:  # noqa: BLE001 - reported in the gate
            errors.append(repr(exc))
        finally:
            connections.close_all()

    def squash():
        try:
            while not done.is_set():
                squashes.append(message_counts_squash())
        except Exception as exc:  # noqa: BLE001 - reported in the gate
            errors.append(repr(exc))
        finally:
            connections.close_all()

    appliers = [
        threading.Thread(target=apply, args=(first[:cut],)),
        threading.Thread(target=apply, args=(second[len(cids) - cut :],)),
    ]
    squashers = [threading.Thread(target=squash) for _ in range(2)]
    for thread in appliers + squashers:
        thread.start()
    for thread in appliers:
        thread.join()
    done.set()
    for thread in squashers:
        thread.join()
    return {"receipts": 2 * cut, "overlap": 2 * cut - len(cids), "squash_runs": len(squashes), "errors": errors}


def _cleanup(ctx, users) -> None:
    ids = [u.pk for u in users]
    with ctx.raw_connection() as conn:
        conn.execute("DELETE FROM campaigns_message WHERE account_id = ANY(%s)", (ids,))
        conn.execute("DELETE FROM campaigns_pendingreceipt")
        conn.execute(
            "DELETE FROM campaigns_messagecount WHERE campaign_id IN "
            "(SELECT id FROM campaigns_campaign WHERE account_id = ANY(%s))",
            (ids,),
        )
        conn.execute("DELETE FROM campaigns_campaign WHERE account_id = ANY(%s)", (ids,))
        conn.execute("DELETE FROM accounts_user WHERE id = ANY(%s)", (ids,))


def run(ctx) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from campaigns import selectors, views_pipeline
    from campaigns.counts import message_counts_squash
    from campaigns.models import Campaign, MessageCount
    from tests.factories import UserFactory

    account, other = (UserFactory(account_id=f"reports{n}-{time.time_ns()}") for n in (1, 2))
    try:
        big, theirs, deep_id, deep_error_id, sent_before = _prepare(ctx, account, other)
        big_uuid = Campaign.objects.get(pk=big).uuid
        all_statuses, errors = views_pipeline.ALL_STATUSES, views_pipeline.ERROR_STATUSES

        def report(statuses, below=None):
            return lambda: selectors.campaign_report(
                user=account, campaign_uuid=big_uuid, statuses=statuses, below=below, size=views_pipeline.PAGE_SIZE
            )

        def detail():
            campaign = selectors.campaign_get_for_user(user=account, campaign_uuid=big_uuid)
            selectors.campaign_status_counts(campaign=campaign)
            list(campaign.contacts.all()[:50]), list(campaign.groups.all())

        def sent(params):
            return lambda: selectors.campaign_page(user=account, scheduled=False, params=params)

        report_url, sent_url = reverse("campaigns:report", args=[big_uuid]), reverse("campaigns:sent")
        # name: (the view's reads, as the view makes them; the request: url, query, headers)
        scenarios = {
            "report_counts": (detail, (reverse("campaigns:detail", args=[big_uuid]), {}, {})),
            "report_first_page": (report(all_statuses), (report_url, {}, {})),
            "report_live": (report(all_statuses), (report_url, {}, {"HX-Request": "true"})),
            "report_filter_error": (report(errors), (report_url, {"status": "error"}, {})),
            "report_filter_error_deep": (
                report(errors, deep_error_id),
                (report_url, {"status": "error", "after": deep_error_id}, {}),
            ),
            "report_deep_page": (report(all_statuses, deep_id), (report_url, {"after": deep_id}, {})),
            "sent_list": (sent({}), (sent_url, {}, {})),
            "sent_list_deep": (sent({"before": sent_before}), (sent_url, {"before": sent_before}, {})),
        }

        def timed(fn) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        out = {}
        with page_client(account) as client:
            for label, (reads, (url, params, headers)) in scenarios.items():
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url, params, headers=headers)
                assert response.status_code == 200, (label, response.status_code)
                sqls = [q["sql"] for q in queries.captured_queries]
                offsets = [int(m) for sql in sqls for m in re.findall(r"OFFSET (\d+)", sql, re.IGNORECASE)]
                content = response.content.decode()
                rows = content.count('data-testid="recipient"') + content.count('/hide/"')  # report rows, sent rows
                counts, data, requests = [], [], []
                for _ in range(REPEATS):
                    counts.append(count_seconds("campaigns_message", account.pk))
                    data.append(timed(reads))
                    requests.append(timed(lambda: client.get(url, params, headers=headers)))  # noqa: B023
                out[label] = result(
                    value=p95(data) * 1000,
                    unit="ms p95",
                    baseline=statistics.median(counts) * 1000,
                    target=0.5,
                    lower_is_better=True,
                    median_ms=round(statistics.median(data) * 1000, 2),
                    request_p95_ms=round(p95(requests) * 1000, 2),
                    queries=len(sqls),
                    rows=rows,
                    max_offset=max(offsets, default=0),
                )
                if len(sqls) > MAX_QUERIES or offsets:
                    out[label]["pass"] = False

        unsquashed_before = MessageCount.objects.filter(campaign_id=big).count()
        message_counts_squash()  # so each squash during the burst folds only what the burst adds
        burst = _concurrent_receipts(big)
        after_burst = _counts_match([big, theirs])
        message_counts_squash()
        after_squash = _counts_match([big, theirs])
        rows_after_squash = MessageCount.objects.filter(campaign_id=big).count()
        one_row_per_status = (
            rows_after_squash == len(set(MessageCount.objects.filter(campaign_id=big).values_list("status", flat=True)))
            and not MessageCount.objects.filter(campaign_id=big, is_squashed=False).exists()
        )
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM campaigns_message WHERE campaign_id = %s", [theirs])
        after_delete = _counts_match([theirs])
        message_counts_squash()
        after_delete = after_delete and not MessageCount.objects.filter(campaign_id=theirs).exists()
        gates = {
            "after_concurrent_receipts_and_squashes": after_burst,
            "after_squash": after_squash,
            "one_squashed_row_per_status": one_row_per_status,
            "after_delete_and_squash": after_delete,
            "no_errors": not burst["errors"],
        }
        out["reports_counts_exact"] = {
            "value": gates,
            "unit": "",
            "baseline": None,
            "ratio": None,
            "target": "all true",
            "pass": all(gates.values()),
            "unsquashed_rows_before": unsquashed_before,
            "rows_after_squash": rows_after_squash,
            **{k: v for k, v in burst.items() if k != "errors"},
            "errors": burst["errors"][:3],
        }
        return out
    finally:
        _cleanup(ctx, [account, other])


if __name__ == "__main__":
    import argparse
    import json
    import os

    from bench import common

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    env = common.bench_env()
    os.environ.update(env)
    common.create_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        print(json.dumps(run(common.Context(size=args.size, quick=True, pairs=1, env=env)), indent=2, default=str))
    finally:
        from django.db import connections

        connections.close_all()
        common.drop_database()
