"""Settings for bench_receipt_endpoint's gunicorn: the project's, plus the baseline view's URL."""

from smsplatform.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_receipt_endpoint"
