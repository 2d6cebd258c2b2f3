"""Celery tasks of the sending pipeline (DESIGN.md, "The sending pipeline")."""

from celery import shared_task


@shared_task(ignore_result=True)
def dispatch_due_campaigns() -> None:
    """Claim the campaigns whose send date has come and expand them. Beat runs it every few
    seconds; "send now" enqueues it at once. Safe to run concurrently and twice."""
    # Placeholder until the sending pipeline (issue 7) lands its dispatcher here.
