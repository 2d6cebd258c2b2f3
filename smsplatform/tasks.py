from celery import shared_task

from . import health


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Record that beat scheduled and a worker ran a periodic task (see /healthz)."""
    health.heartbeat_record(name="beat")
