"""Celery tasks of the sending pipeline (DESIGN.md, "The sending pipeline").

Every task takes ids and small values, loads, then calls one service that checks the state and
claims its work first, so a task delivered twice (``acks_late``, a worker lost) does no harm.
"""

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from . import counts, pipeline
from .gateways import CarrierEvents, TemporaryGatewayError, get_gateway

logger = logging.getLogger(__name__)

SUBMIT_MAX_RETRIES = 6


@shared_task(ignore_result=True)
def dispatch_due_campaigns() -> None:
    """Claim the campaigns whose send date has come and expand them. Beat runs it every 2 s;
    "send now" enqueues it at once. Safe to run concurrently and twice."""
    for campaign_id in pipeline.campaign_claim_due():
        expand_campaign.delay(campaign_id)


@shared_task(ignore_result=True, acks_late=True, queue="sending")
def expand_campaign(campaign_id: int) -> None:
    """Expand a claimed campaign into messages, fanning out a submit task per ``BATCH_SIZE``
    messages as soon as each chunk is committed (workers send while the rest is written)."""
    pipeline.campaign_expand(
        campaign_id=campaign_id, enqueue=lambda first_id, last_id: submit_batch.delay(campaign_id, first_id, last_id)
    )


def retry_countdown(retries: int) -> int:
    """Exponential backoff: 2, 4, 8... seconds, capped at 5 minutes."""
    return min(2 ** (retries + 1), 300)


@shared_task(bind=True, ignore_result=True, acks_late=True, queue="sending", max_retries=SUBMIT_MAX_RETRIES)
def submit_batch(self, campaign_id: int, first_id: int, last_id: int) -> None:
    """Submit the queued messages of an id range. Transient carrier errors retry with exponential
    backoff (2, 4, 8... s, capped at 5 min); once retries are exhausted the messages fail and are
    refunded. Messages the carrier refused "for now" are retried the same way."""
    try:
        pipeline.messages_submit(campaign_id=campaign_id, first_id=first_id, last_id=last_id)
    except TemporaryGatewayError as exc:
        if self.request.retries >= SUBMIT_MAX_RETRIES:
            pipeline.messages_fail_queued(
                campaign_id=campaign_id, first_id=first_id, last_id=last_id, reason=f"Carrier unavailable: {exc}"
            )
            return
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    if pipeline.campaign_has_queued(campaign_id=campaign_id, first_id=first_id, last_id=last_id):
        if self.request.retries >= SUBMIT_MAX_RETRIES:
            pipeline.messages_fail_queued(
                campaign_id=campaign_id, first_id=first_id, last_id=last_id, reason="Refused by the carrier (busy)."
            )
            return
        raise self.retry(countdown=retry_countdown(self.request.retries))


@shared_task(ignore_result=True)
def requeue_stale_claims() -> None:
    """Housekeeping (beat): re-submit messages whose worker died mid-batch, re-expand campaigns
    whose expansion was lost, apply carrier callbacks a lost flush left in Redis."""
    for campaign_id, first_id, last_id in pipeline.messages_requeue_stale():
        submit_batch.delay(campaign_id, first_id, last_id)
    for campaign_id in pipeline.campaigns_stuck_dispatching():
        expand_campaign.delay(campaign_id)
    from django.conf import settings

    for alias in settings.SMS_GATEWAYS:  # callbacks left behind by a lost flush task
        flush_carrier_callbacks.delay(alias)


@shared_task(ignore_result=True)
def squash_message_counts() -> None:
    """Housekeeping (beat, every 30 s): fold each campaign's message-count deltas into one row
    per status so the report's counts stay a few rows. Safe to overlap with itself."""
    counts.message_counts_squash()


@shared_task(ignore_result=True, acks_late=True, queue="sending")
def flush_carrier_callbacks(alias: str) -> None:
    """Apply the carrier callbacks buffered in Redis for ``alias`` in bulk (GW-2)."""
    from .receipts import carrier_callbacks_flush

    carrier_callbacks_flush(gateway_alias=alias)


@shared_task(ignore_result=True, queue="sending")
def simulator_emit(alias: str, step: int, items: list) -> None:
    """The simulator's carrier side: step 1 reports "delivered to operator", step 2 the outcome
    and replies, through the same ingestion path as a real carrier."""
    from .gateways.simulator import events_for
    from .receipts import apply_carrier_events

    gateway = get_gateway(alias)
    items = [tuple(item) for item in items]
    events: CarrierEvents = events_for(step=step, items=items, number=gateway.number, at=timezone.now())
    apply_carrier_events(gateway_alias=alias, events=events)
    if step == 1:
        transaction.on_commit(lambda: simulator_emit.apply_async(args=[alias, 2, items], countdown=gateway.delay))
