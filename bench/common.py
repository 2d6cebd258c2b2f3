"""Shared benchmark machinery: database lifecycle, Django setup, A/B timing, calibration, results.

See bench/README.md for the contract of ``bench_*.py`` modules (``run(ctx) -> dict[str, dict]``).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
BENCH_DB = os.environ.get("BENCH_DB", "sms_bench")


def result(
    *,
    value: float,
    unit: str,
    baseline: float | None,
    target: float,
    lower_is_better: bool = False,
    ratio: float | None = None,
    **extra,
) -> dict:
    """One figure. ``ratio`` defaults to value/baseline; ``pass`` compares it to ``target``
    (>= target, or <= target when ``lower_is_better``)."""
    if ratio is None and baseline:
        ratio = value / baseline
    ok = ratio is not None and (ratio <= target if lower_is_better else ratio >= target)
    return {
        "value": round(value, 4),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 4),
        "ratio": None if ratio is None else round(ratio, 4),
        "target": target,
        "pass": ok,
        **extra,
    }


def ab(run_a: Callable[[], float], run_b: Callable[[], float], *, pairs: int, reset: Callable[[], None] | None = None):
    """Interleave A and B (A B A B ...), each call returning its own elapsed seconds (so setup is
    excluded); ``reset`` runs before every call. Returns (median of per-pair B/A time ratios,
    spread (min, max), A times, B times)."""
    a_times, b_times = [], []
    for _ in range(pairs):
        for fn, bucket in ((run_a, a_times), (run_b, b_times)):
            if reset:
                reset()
            bucket.append(fn())
    ratios = [b / a for a, b in zip(a_times, b_times, strict=True)]
    return statistics.median(ratios), (min(ratios), max(ratios)), a_times, b_times


@contextmanager
def page_client(account):
    """A Django test client logged in as ``account`` for timing pages through their real views;
    static files are served without the manifest meanwhile (the bench runs no collectstatic)."""
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    client.force_login(account)
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield client


def count_seconds(table: str, account_id: int) -> float:
    """Seconds of one exact ``count(*)`` of an account's rows of ``table``, through Django's
    connection: the reference the list-page targets are ratios of."""
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE account_id = %s", [account_id])
        cursor.fetchone()
    return time.perf_counter() - start


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


@dataclass
class Context:
    """What a bench module gets. ``size`` is the row count (100k quick, 1M full)."""

    size: int
    quick: bool
    pairs: int
    cache: Path = CACHE
    db_name: str = BENCH_DB
    env: dict = field(default_factory=dict)

    # --- database ---------------------------------------------------------------------------------
    def raw_connection(self):
        """A psycopg 3 connection to the bench database (autocommit), outside Django."""
        import psycopg

        return psycopg.connect(f"{PG_ADMIN_URL}/{self.db_name}", autocommit=True)

    def checkpoint(self) -> None:
        with self.raw_connection() as conn:
            conn.execute("CHECKPOINT")

    def copy_file(self, conn, *, table: str, columns: tuple[str, ...], path: Path) -> float:
        """COPY a tab-separated file into ``table``; returns the seconds taken (the calibration limit)."""
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            open(path, "rb") as handle,
        ):
            while block := handle.read(8 << 20):
                copy.write(block)
        return time.perf_counter() - start

    def exact_count_seconds(self, conn, *, table: str, where: str, params: tuple) -> float:
        start = time.perf_counter()
        conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()
        return time.perf_counter() - start

    # --- processes --------------------------------------------------------------------------------
    def child(self, code: str, *args: str) -> dict:
        """Run Python ``code`` in a fresh process with Django set up on the bench DB; the code
        prints one JSON line, returned with the child's peak RSS (MB) added."""
        import json

        proc = subprocess.run(
            [sys.executable, "-c", _CHILD_PRELUDE + code, *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            raise RuntimeError(f"bench child failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


_CHILD_PRELUDE = """
import json, os, resource, sys, time
import django
django.setup()
def _emit(d):
    d["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(d))
"""


def bench_env(db_name: str = BENCH_DB) -> dict:
    var_dir = CACHE / "var"
    (var_dir / "media").mkdir(parents=True, exist_ok=True)
    return {
        "DATABASE_URL": f"{PG_ADMIN_URL}/{db_name}",
        "DJANGO_SETTINGS_MODULE": "smsplatform.settings",
        "VAR_DIR": str(var_dir),
        # The pipeline and SMPP benchmarks need a real Redis (PERF.md: the one on loopback).
        "CELERY_BROKER_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
        "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }


def create_database(db_name: str = BENCH_DB) -> None:
    import psycopg

    with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def drop_database(db_name: str = BENCH_DB) -> None:
    import psycopg

    with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def env_info() -> dict:
    import django
    import psycopg

    try:
        with psycopg.connect(f"{PG_ADMIN_URL}/postgres") as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001 - reported, not fatal
        pg = "unreachable"
    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": pg,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
