from datetime import datetime

from celery import shared_task

from . import services


@shared_task(queue="imports")
def contact_import_task(import_id: int) -> None:
    """Run one contact import (ADR-3); the service records success or failure on the import."""
    services.contact_import_run(import_id=import_id)


@shared_task(ignore_result=True, queue="imports")
def contacts_search_refresh(account_id: int, since_iso: str, import_id: int | None = None) -> None:
    """Index for name search the account's contacts updated since ``since_iso`` (ISO 8601), queued
    after an import's merge commits (ADR-1, ADR-3); with ``import_id``, then record on that import
    that its contacts are findable. Safe to run twice: the rows are rewritten with the same text."""
    services.search_index_refresh(account_id=account_id, since=datetime.fromisoformat(since_iso))
    if import_id is not None:
        services.contact_import_search_indexed(import_id=import_id)


@shared_task(ignore_result=True)
def contact_imports_search_requeue() -> None:
    """Housekeeping (beat, every 10 min): queue the indexing again for imports done more than
    10 minutes ago whose contacts are still not findable by name."""
    services.contact_imports_search_requeue()
