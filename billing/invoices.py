"""Invoice PDFs (BIL-7), drawn with reportlab from the frozen ``Invoice`` row (never the live profile)."""

from io import BytesIO

from django.utils import formats
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .models import Invoice


def _eur(value) -> str:
    return f"{value:,.2f} EUR".replace(",", " ")


def _lines(text: str) -> str:
    from xml.sax.saxutils import escape

    return "<br/>".join(escape(line) for line in text.splitlines())


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as PDF bytes: seller, buyer, one line (credits x unit price), VAT and totals."""
    from xml.sax.saxutils import escape

    styles = getSampleStyleSheet()
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, title=f"Invoice {invoice.number}", leftMargin=20 * mm, rightMargin=20 * mm
    )
    seller = f"<b>{escape(invoice.seller_name)}</b><br/>{_lines(invoice.seller_address)}"
    if invoice.seller_vat_number:
        seller += f"<br/>{_('VAT number')}: {escape(invoice.seller_vat_number)}"
    buyer_lines = [invoice.buyer_company, invoice.buyer_name] if invoice.buyer_company else [invoice.buyer_name]
    buyer = "<br/>".join(escape(line) for line in buyer_lines) + "<br/>" + _lines(invoice.buyer_address)
    if invoice.buyer_vat_number:
        buyer += f"<br/>{_('VAT number')}: {escape(invoice.buyer_vat_number)}"
    lines = Table(
        [
            [_("Description"), _("Quantity"), _("Unit price excl. VAT"), _("Total excl. VAT")],
            [
                _("SMS credits"),
                str(invoice.credits),
                f"{invoice.unit_price_eur:.4f} EUR",
                _eur(invoice.amount_excl_vat),
            ],
            ["", "", _("Total excl. VAT"), _eur(invoice.amount_excl_vat)],
            ["", "", _("VAT %(rate)s%%") % {"rate": f"{invoice.vat_rate:g}"}, _eur(invoice.vat_amount)],
            ["", "", _("Total incl. VAT"), _eur(invoice.amount_incl_vat)],
        ],
        colWidths=[60 * mm, 25 * mm, 45 * mm, 40 * mm],
    )
    lines.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
                ("LINEBELOW", (0, 0), (-1, 1), 0.5, colors.grey),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("FONTNAME", (2, -1), (-1, -1), "Helvetica-Bold"),
            ]
        )
    )
    story = [
        Table([[Paragraph(seller, styles["Normal"]), Paragraph(buyer, styles["Normal"])]], colWidths=[85 * mm] * 2),
        Spacer(1, 10 * mm),
        Paragraph(f"{_('Invoice')} {escape(invoice.number)}", styles["Title"]),
        Paragraph(f"{_('Date')}: {formats.date_format(invoice.issued_at, 'Y-m-d')}", styles["Normal"]),
        Paragraph(f"{_('Order')}: {invoice.order.reference} ({invoice.order.get_method_display()})", styles["Normal"]),
        Spacer(1, 8 * mm),
        lines,
        Spacer(1, 8 * mm),
        Paragraph(_("Paid. Credits never expire."), styles["Normal"]),
    ]
    doc.build(story)
    return buffer.getvalue()
