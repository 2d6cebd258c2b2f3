"""Run every bench/bench_*.py module and print one JSON document.

.venv/bin/python bench/run_all.py --quick          # 100k rows, a few minutes
.venv/bin/python bench/run_all.py --full --check   # 1M rows; exit 1 when a ratio misses its target
.venv/bin/python bench/run_all.py --quick --only phones,import
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100,000 rows (default)")
    size.add_argument("--full", action="store_true", help="1,000,000 rows")
    size.add_argument("--size", type=int, help="any row count")
    parser.add_argument("--pairs", type=int, help="A/B pairs per figure (default 3 quick, 2 full)")
    parser.add_argument("--only", help="comma-separated module names without bench_ (e.g. import,phones)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a figure misses its target")
    parser.add_argument("--keep-db", action="store_true", help="leave the sms_bench database for inspection")
    args = parser.parse_args(argv)
    n = args.size or (1_000_000 if args.full else 100_000)
    env = common.bench_env()
    os.environ.update(env)
    common.create_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    ctx = common.Context(size=n, quick=n < 1_000_000, pairs=args.pairs or (2 if n >= 1_000_000 else 3), env=env)
    ctx.cache.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else None
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    report = {"env": {**common.env_info(), "size": n, "pairs": ctx.pairs}, "results": {}, "errors": {}, "seconds": {}}
    # Modules and the processes they start (gunicorn, Celery workers) print to stdout: send all of it
    # to stderr so stdout carries only the JSON document.
    json_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        for name in modules:
            if wanted and name.removeprefix("bench_") not in wanted:
                continue
            started = time.perf_counter()
            try:
                module = importlib.import_module(f"bench.{name}")
                report["results"].update(module.run(ctx))
            except Exception:  # noqa: BLE001 - one broken module must not hide the others' figures
                report["errors"][name] = traceback.format_exc(limit=5)
            report["seconds"][name] = round(time.perf_counter() - started, 1)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            common.drop_database()
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text, file=json_out, flush=True)
    (ctx.cache / f"last-{n}.json").write_text(text)
    failed = report["errors"] or [k for k, v in report["results"].items() if not v["pass"]]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
