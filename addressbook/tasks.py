from celery import shared_task

from . import services


@shared_task(queue="imports")
def contact_import_task(import_id: int) -> None:
    """Run one contact import (ADR-3); the service records success or failure on the import."""
    services.contact_import_run(import_id=import_id)
