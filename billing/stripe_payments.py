"""Card payments through Stripe Checkout (BIL-5).

The session is created server-side; credits move only when Stripe's signed
``checkout.session.completed`` webhook arrives, through ``order_mark_paid`` (exactly once).
"""

import logging

import stripe
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import Order
from .services import BillingError, order_amounts, order_cancel, order_mark_paid

logger = logging.getLogger(__name__)


class InvalidWebhook(Exception):
    """The payload is not a Stripe event signed with our webhook secret."""


def card_payments_enabled() -> bool:
    """Card is offered only when both Stripe keys are configured."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def _client() -> stripe.StripeClient:
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=2)


def checkout_session_create(*, order: Order, success_url: str, cancel_url: str, customer_email: str = "") -> str:
    """Create the Checkout Session of a pending card order, remember its id, return Stripe's payment URL.

    The order's UUID is the idempotency key, so a retried request never opens two sessions.
    When Stripe cannot be reached or refuses, the order is cancelled and ``BillingError`` raised.
    """
    _excl, _vat, incl = order_amounts(order.price_eur)
    params = {
        "mode": "payment",
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(order.uuid),
        "metadata": {"order": str(order.uuid)},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": int(incl * 100),
                    "product_data": {"name": f"{order.credits} SMS credits"},
                },
            }
        ],
    }
    if customer_email:
        params["customer_email"] = customer_email
    try:
        session = _client().v1.checkout.sessions.create(params, {"idempotency_key": f"order:{order.uuid}"})
    except stripe.StripeError as exc:
        logger.warning("Stripe Checkout session for order %s failed: %s", order.uuid, exc)
        order_cancel(order_id=order.pk)
        raise BillingError(
            _("Card payment is unavailable right now. Please try again or pay by bank transfer.")
        ) from exc
    Order.objects.filter(pk=order.pk).update(stripe_session_id=session.id)
    order.stripe_session_id = session.id
    return session.url


def webhook_handle(*, payload: bytes, signature: str) -> bool:
    """Verify and apply one Stripe webhook. Returns True when it paid an order.

    Raises ``InvalidWebhook`` (the view answers 400) for a bad signature or payload; nothing
    changes then. A replayed ``checkout.session.completed`` finds the order paid and does nothing.
    """
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidWebhook(str(exc)) from exc
    # Cards are confirmed with "completed"; delayed methods (SEPA debit...) later, with "async_payment_succeeded".
    if event.type not in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return False
    session = event.data.object
    if getattr(session, "payment_status", None) != "paid":
        return False
    order = Order.objects.filter(stripe_session_id=session.id).only("id").first()
    if order is None:
        logger.warning("Stripe session %s matches no order", session.id)
        return False
    try:
        _order, paid_now = order_mark_paid(order_id=order.pk, stripe_session_id=session.id)
    except BillingError:
        # Money arrived for an order we cancelled: staff must look; retries from Stripe would not help.
        logger.error("Stripe paid session %s of order %s, which cannot be paid", session.id, order.pk)
        return False
    return paid_now
