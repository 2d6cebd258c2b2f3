"""The Celery application: broker from settings, tasks autodiscovered, beat schedule in code."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# Every "filesystem://" broker URL gets the atomic-write transport (see smsplatform/broker.py).
TRANSPORT_ALIASES["filesystem"] = "smsplatform.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")

app = Celery("smsplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
