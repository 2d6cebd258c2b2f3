"""Stripe Checkout against a local HTTP stub of Stripe's API, with the real stripe library."""

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import stripe
from django.urls import reverse

from billing.models import Invoice, LedgerEntry, Order
from tests.factories import OrderFactory, PackFactory

pytestmark = pytest.mark.django_db

STUB_PORT = 8121
WEBHOOK_SECRET = "whsec_test_billing"


class _StripeStub(BaseHTTPRequestHandler):
    requests: list = []
    refuse = False

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.requests.append({"path": self.path, "form": parse_qs(body), "headers": dict(self.headers)})
        if self.refuse:
            payload = json.dumps({"error": {"type": "invalid_request_error", "message": "No such price"}}).encode()
        else:
            payload = json.dumps(
                {
                    "id": "cs_test_stub123",
                    "object": "checkout.session",
                    "url": "https://checkout.stripe.test/pay/cs_test_stub123",
                }
            ).encode()
        self.send_response(400 if self.refuse else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe_stub(settings):
    _StripeStub.requests = []
    _StripeStub.refuse = False
    server = ThreadingHTTPServer(("127.0.0.1", STUB_PORT), _StripeStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.STRIPE_SECRET_KEY = "sk_test_billing"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{STUB_PORT}"
    yield _StripeStub.requests
    server.shutdown()
    server.server_close()


def test_card_purchase_creates_a_checkout_session_and_credits_nothing(client_logged, user, stripe_stub):
    pack = PackFactory(credits=1000, price_eur=Decimal("75"))
    response = client_logged.post(reverse("billing:buy"), {"pack": pack.pk, "method": "card"})
    assert response.status_code == 302 and response["Location"] == "https://checkout.stripe.test/pay/cs_test_stub123"
    order = Order.objects.get(account=user)
    assert (order.method, order.status, order.stripe_session_id) == ("card", "pending", "cs_test_stub123")
    (request,) = stripe_stub
    assert request["path"] == "/v1/checkout/sessions"
    assert request["headers"]["Authorization"] == "Bearer sk_test_billing"
    assert request["headers"]["Idempotency-Key"] == f"order:{order.uuid}"
    form = request["form"]
    assert form["mode"] == ["payment"] and form["client_reference_id"] == [str(order.uuid)]
    assert form["line_items[0][price_data][unit_amount]"] == ["9000"]  # 75 EUR + 20% VAT, in cents
    assert form["line_items[0][price_data][currency]"] == ["eur"]
    assert form["success_url"][0].endswith(reverse("billing:order", args=[order.uuid]))
    user.refresh_from_db()
    assert user.credit_balance == 0


def test_stripe_refusal_cancels_the_order_and_says_so(client_logged, user, stripe_stub):
    _StripeStub.refuse = True
    pack = PackFactory()
    response = client_logged.post(reverse("billing:buy"), {"pack": pack.pk, "method": "card"})
    assert response.status_code == 200 and "Card payment is unavailable" in response.content.decode()
    assert Order.objects.get(account=user).status == "cancelled"


def _event(session_id: str, *, payment_status="paid", event_type="checkout.session.completed") -> str:
    return json.dumps(
        {
            "id": "evt_test_1",
            "object": "event",
            "type": event_type,
            "data": {"object": {"id": session_id, "object": "checkout.session", "payment_status": payment_status}},
        }
    )


def _post_webhook(client, payload: str, *, secret=WEBHOOK_SECRET, timestamp=None):
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return client.post(
        reverse("billing:stripe_webhook"), data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


@pytest.fixture
def card_order(settings, user):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_billing", WEBHOOK_SECRET
    return OrderFactory(account=user, method="card", stripe_session_id="cs_test_paid")


def test_signed_webhook_credits_once_even_when_replayed(client, user, card_order):
    payload = _event("cs_test_paid")
    for _ in range(3):
        assert _post_webhook(client, payload).status_code == 200
    user.refresh_from_db()
    card_order.refresh_from_db()
    assert user.credit_balance == Decimal("1000") and card_order.status == "paid"
    assert LedgerEntry.objects.filter(account=user).count() == 1 and Invoice.objects.count() == 1


@pytest.mark.parametrize("tamper", ["wrong_secret", "tampered_body", "too_old", "missing"])
def test_bad_signature_gets_400_and_changes_nothing(client, user, card_order, tamper):
    payload = _event("cs_test_paid")
    if tamper == "wrong_secret":
        response = _post_webhook(client, payload, secret="whsec_attacker")
    elif tamper == "too_old":
        response = _post_webhook(client, payload, timestamp=int(time.time()) - 3600)
    elif tamper == "missing":
        response = client.post(reverse("billing:stripe_webhook"), data=payload, content_type="application/json")
    else:
        header = stripe.WebhookSignature.generate_signature_header(_event("cs_test_other"), WEBHOOK_SECRET)
        response = client.post(
            reverse("billing:stripe_webhook"),
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )
    assert response.status_code == 400
    card_order.refresh_from_db()
    assert card_order.status == "pending" and not LedgerEntry.objects.exists()


def test_unpaid_or_other_events_and_unknown_sessions_change_nothing(client, user, card_order):
    assert _post_webhook(client, _event("cs_test_paid", payment_status="unpaid")).status_code == 200
    assert _post_webhook(client, _event("cs_test_paid", event_type="checkout.session.expired")).status_code == 200
    assert _post_webhook(client, _event("cs_test_unknown")).status_code == 200
    card_order.refresh_from_db()
    assert card_order.status == "pending" and not LedgerEntry.objects.exists()


def test_paid_session_of_a_cancelled_order_is_acknowledged_and_credits_nothing(client, user, card_order):
    Order.objects.filter(pk=card_order.pk).update(status="cancelled")
    assert _post_webhook(client, _event("cs_test_paid")).status_code == 200
    assert not LedgerEntry.objects.exists()


def test_delayed_payment_success_credits(client, user, card_order):
    payload = _event("cs_test_paid", event_type="checkout.session.async_payment_succeeded")
    assert _post_webhook(client, payload).status_code == 200
    user.refresh_from_db()
    assert user.credit_balance == Decimal("1000")
