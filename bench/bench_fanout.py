"""Campaign fan-out benchmark (PERF.md): expand a campaign of N recipients against raw COPY.

Audience: 40% contacts through groups, 30% contacts picked directly, 30% typed numbers; 1% of
the audience repeated (duplicates) and 1% blacklisted. Locmem gateway, no rate cap, PostgreSQL.

Runs inside bench/run_all.py (``run(ctx)``) or standalone::

    DEBUG=1 DATABASE_URL=postgres://... python bench/bench_fanout.py --size 100000

Figures: ``fanout_expand`` (messages/s, baseline = COPY of the same rows into the same table),
``fanout_first_batch`` (seconds from the expansion's start until its first batch of 500 is at the
gateway, the batch submitted inline when enqueued as a worker would; the expansion goes on meanwhile),
``fanout_task_size`` (messages per Celery task), ``fanout_memory`` (peak traced MB per 100k
recipients at N vs N/4: flat means ratio ~1), and the correctness gates.
"""

import json
import os
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")


def _setup():
    import django

    django.setup()
    from django.conf import settings

    settings.SMS_GATEWAYS = {"default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {}}}
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("bench_fanout needs PostgreSQL (DATABASE_URL=postgres://...).")


def _copy(cursor, table, columns, rows):
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _audience(size: int):
    """Deterministic numbers: unique mobiles, then the duplicate and blacklisted picks."""
    unique = [f"+336{i:08d}" for i in range(int(size * 0.99))]
    duplicates = unique[: size - len(unique)]
    blacklisted = unique[1 : len(unique) : 100]
    return unique, duplicates, blacklisted


def _prepare(size: int):
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from addressbook.models import BlacklistEntry, Group
    from billing.models import Rate
    from billing.services import ledger_post
    from campaigns.models import Campaign

    now = timezone.now()
    user = User.objects.create_user(f"bench{time.time_ns()}", email="bench@example.com", password="x")
    User.objects.filter(pk=user.pk).update(email_confirmed_at=now)
    Rate.objects.get_or_create(kind="sms", region="FR", defaults={"credits_per_part": Decimal("1")})
    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal(size * 2), reference="bench")
    unique, duplicates, blacklisted = _audience(size)
    n_group, n_direct = int(len(unique) * 0.4), int(len(unique) * 0.3)
    contacts_part = unique[: n_group + n_direct]
    typed = unique[n_group + n_direct :] + duplicates
    group = Group.objects.create(account=user, name="bench")
    BlacklistEntry.objects.bulk_create([BlacklistEntry(account=user, number=n) for n in blacklisted], batch_size=5000)
    with connection.cursor() as cursor:
        _copy(
            cursor,
            "addressbook_contact",
            "account_id, mobile, region, last_name, first_name, email, company, created_at, updated_at",
            ((user.pk, n, "FR", "Martin", f"P{i}", "", "", now, now) for i, n in enumerate(contacts_part)),
        )
        cursor.execute("SELECT id FROM addressbook_contact WHERE account_id = %s ORDER BY id", [user.pk])
        ids = [r[0] for r in cursor.fetchall()]
        campaign = Campaign.objects.create(account=user, text="Bonjour $prenom, -20% ce week-end", status="dispatching",
                                           numbers=typed, scheduled_at=now)  # fmt: skip
        _copy(cursor, "addressbook_membership", "group_id, contact_id", ((group.pk, c) for c in ids[:n_group]))
        _copy(cursor, "campaigns_campaign_groups", "campaign_id, group_id", [(campaign.pk, group.pk)])
        _copy(
            cursor, "campaigns_campaign_contacts", "campaign_id, contact_id", ((campaign.pk, c) for c in ids[n_group:])
        )
    return user, campaign, set(blacklisted)


_ROW_COLUMNS = "phone, region, text, parts, credits, status, error, gateway, attempts, created_at"
_MINE = "(SELECT id FROM campaigns_campaign WHERE account_id = %s)"


def _cleanup(user):
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in (
            "DELETE FROM campaigns_message WHERE account_id = %s",
            "DELETE FROM billing_ledgerentry WHERE account_id = %s",  # before campaigns: it points to them
            "DELETE FROM campaigns_campaign_contacts WHERE campaign_id IN " + _MINE,
            "DELETE FROM campaigns_campaign_groups WHERE campaign_id IN " + _MINE,
            "DELETE FROM campaigns_campaign WHERE account_id = %s",
            "DELETE FROM addressbook_membership WHERE contact_id IN "
            "(SELECT id FROM addressbook_contact WHERE account_id = %s)",
            "DELETE FROM addressbook_contact WHERE account_id = %s",
            "DELETE FROM addressbook_group WHERE account_id = %s",
            "DELETE FROM addressbook_blacklistentry WHERE account_id = %s",
            "DELETE FROM accounts_user WHERE id = %s",
        ):
            cursor.execute(sql, [user.pk])


def _raw_copy_seconds(campaign_id, account_id, rows) -> float:
    """The baseline: COPY the very rows the app wrote, into the same table, then remove them."""
    from django.db import connection, transaction

    with transaction.atomic():
        start = time.perf_counter()
        with connection.cursor() as cursor:
            _copy(
                cursor,
                "campaigns_message",
                "campaign_id, account_id, " + _ROW_COLUMNS,
                ((campaign_id, account_id, "x" + r[0][1:], *r[1:]) for r in rows),
            )
            # Django's FKs are deferred: check them now, as the app's COMMIT does, then roll back.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        elapsed = time.perf_counter() - start
        transaction.set_rollback(True)
    return elapsed


class _PeakRss:
    """Peak resident memory growth of this process during the block, sampled every 20 ms
    (tracemalloc would slow the Python side several times and distort the timing)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @property
    def peak_growth(self) -> int:
        return max(self.peak - self.base, 1)


def _one(size: int) -> dict:
    from django.db import connection

    from billing.models import LedgerEntry
    from campaigns import pipeline
    from campaigns.gateways import locmem
    from campaigns.models import Campaign, Message

    user, campaign, blacklisted = _prepare(size)
    try:
        first = {}

        def enqueue(first_id, last_id):
            # A worker takes the first batch as soon as it is enqueued (here, inline): the figure
            # is the time from the expansion's start to the gateway holding those messages.
            if not first:
                submit_start = time.perf_counter()
                pipeline.messages_submit(campaign_id=campaign.pk, first_id=first_id, last_id=last_id)
                assert len(locmem.outbox) == last_id - first_id + 1
                first["at"] = time.perf_counter() - start
                first["submit_s"] = time.perf_counter() - submit_start

        with _PeakRss() as rss:
            start = time.perf_counter()
            assert pipeline.campaign_expand(campaign_id=campaign.pk, enqueue=enqueue)
            expand_s = time.perf_counter() - start - first["submit_s"]
        peak = rss.peak_growth
        first_batch_s = first["at"]
        locmem.outbox.clear()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT phone, region, text, parts, credits, status, error, gateway, attempts, created_at "
                "FROM campaigns_message WHERE campaign_id = %s",
                [campaign.pk],
            )
            rows = cursor.fetchall()
        copy_s = _raw_copy_seconds(campaign.pk, user.pk, rows)
        campaign = Campaign.objects.get(pk=campaign.pk)
        messages = Message.objects.filter(campaign=campaign)
        sum_costs = sum(r[4] for r in rows)
        phones = [r[0] for r in rows]
        user.refresh_from_db()
        debits = list(LedgerEntry.objects.filter(account=user, kind="send").values_list("amount", flat=True))
        gates = {
            "credits_debited_equals_costs": campaign.credits_debited == sum_costs,
            "one_debit_entry_of_the_costs": debits == [-sum_costs],
            "reservation_released": user.credit_reserved == 0 and campaign.credits_reserved == 0,
            "no_duplicate": len(phones) == len(set(phones)),
            "no_blacklisted": not (set(phones) & blacklisted),
            "count": messages.count() == len(rows),
        }
        return {"size": size, "messages": len(rows), "expand_s": expand_s, "copy_s": copy_s,
                "first_batch_s": first_batch_s, "peak_mb": peak / 1e6, "gates": gates}  # fmt: skip
    finally:
        _cleanup(user)


def run(ctx=None) -> dict[str, dict]:
    _setup()
    size = int((ctx or {}).get("size", 100_000)) if isinstance(ctx, dict) else int(getattr(ctx, "size", 100_000))
    small = _one(max(size // 4, 1000))
    big = _one(size)
    from campaigns.pipeline import BATCH_SIZE

    ratio = (big["messages"] / big["expand_s"]) / (big["messages"] / big["copy_s"])
    mem_ratio = (big["peak_mb"] / big["size"]) / (small["peak_mb"] / small["size"])
    gates = all(big["gates"].values()) and all(small["gates"].values())
    return {
        "fanout_expand": {"value": round(big["messages"] / big["expand_s"]), "unit": "messages/s",
                          "baseline": round(big["messages"] / big["copy_s"]), "ratio": round(ratio, 3),
                          "target": 0.5, "pass": ratio >= 0.5},
        "fanout_first_batch": {"value": round(big["first_batch_s"], 2), "unit": "s", "baseline": None,
                               "ratio": None, "target": 2.0, "pass": big["first_batch_s"] <= 2.0},
        "fanout_task_size": {"value": BATCH_SIZE, "unit": "messages/task", "baseline": None, "ratio": None,
                             "target": 500, "pass": BATCH_SIZE >= 500},
        "fanout_memory": {"value": round(big["peak_mb"], 1), "unit": "MB peak RSS growth",
                          "baseline": round(small["peak_mb"], 1), "ratio": round(mem_ratio, 3),
                          "target": "per-recipient memory not growing (ratio <= 1.2)", "pass": mem_ratio <= 1.2},
        "fanout_gates": {"value": {**big["gates"]}, "unit": "", "baseline": None, "ratio": None, "target": "all true",
                         "pass": gates},
    }  # fmt: skip


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="100,000 recipients")
    args = parser.parse_args()
    out = run({"size": 100_000 if args.quick else args.size})
    print(json.dumps({"results": out}, indent=2, default=str))
