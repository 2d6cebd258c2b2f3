import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing.invoices import invoice_pdf
from billing.services import order_mark_paid
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_invoice_pdf_text_has_parties_number_and_amounts(settings):
    settings.SELLER_NAME, settings.SELLER_VAT_NUMBER = "SMS Platform SAS", "FR12345678901"
    settings.SELLER_ADDRESS = "1 rue de la République\n13001 Marseille"
    buyer = UserFactory(
        company="Boulangerie Martin & Fils",
        vat_number="FR99887766554",
        address_line1="3 rue Haute",
        postal_code="69001",
        city="Lyon",
    )
    order, _ = order_mark_paid(order_id=OrderFactory(account=buyer, credits=10000, price_eur=Decimal("650")).pk)
    invoice = order.invoice
    pages = PdfReader(io.BytesIO(invoice_pdf(invoice))).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())  # table cells come out on lines
    for expected in [
        f"Invoice {invoice.number}",
        "SMS Platform SAS",
        "FR12345678901",
        "13001 Marseille",
        "Boulangerie Martin & Fils",
        "FR99887766554",
        "69001 Lyon",
        "10000",
        "0.0650 EUR",
        "Total excl. VAT 650.00 EUR",
        "VAT 20% 130.00 EUR",
        "Total incl. VAT 780.00 EUR",
    ]:
        assert expected in text, expected
