from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from smsplatform.exports import csv_response

from .forms import (
    BuyForm,
    SimulatorForm,
    SimulatorRecipientsFormSet,
    TransactionFilterForm,
    TransferForm,
    region_choices,
)
from .invoices import invoice_pdf
from .models import Invoice, Order, Pack
from .pricing import UncoveredDestination, quote
from .selectors import keyset_page, ledger_entries, rate_card
from .services import BillingError, InsufficientCredits, order_create, transfer_create
from .stripe_payments import InvalidWebhook, card_payments_enabled, checkout_session_create, webhook_handle

PAGE_SIZE = 50


# --- Public pages (BIL-3, BIL-4) ------------------------------------------------------------


def rates(request):
    packs = Pack.objects.filter(active=True)
    return render(request, "billing/pack_list.html", {"packs": packs})


def rates_international(request):
    query = request.GET.get("q", "").strip()
    return render(request, "billing/rate_list.html", {"countries": rate_card(query=query), "query": query})


def simulator(request):
    choices = region_choices()
    data = request.GET if "text" in request.GET else None
    form = SimulatorForm(data)
    formset = SimulatorRecipientsFormSet(
        data, prefix="r", form_kwargs={"region_choices": choices}, initial=None if data else [{"region": "FR"}]
    )
    result = None
    if data is not None and form.is_valid() and formset.is_valid():
        recipients: dict[str, int] = {}
        for row in formset.cleaned_data:
            if row.get("region") and row.get("count"):
                recipients[row["region"]] = recipients.get(row["region"], 0) + row["count"]
        if not recipients:
            form.add_error(None, _("Enter at least one country and a number of recipients."))
        else:
            try:
                result = quote(
                    kind=form.cleaned_data["kind"], text=form.cleaned_data["text"], recipients_by_region=recipients
                )
            except UncoveredDestination as exc:
                form.add_error(None, _("We do not send to %(region)s with this message type.") % {"region": exc.region})
    names = dict(choices)
    lines = [(names.get(line.region, line.region), line) for line in result.lines] if result else []
    return render(
        request, "billing/quote_form.html", {"form": form, "formset": formset, "result": result, "lines": lines}
    )


# --- Customer pages -----------------------------------------------------------------------


@login_required
def buy(request):
    card_enabled = card_payments_enabled()
    form = BuyForm(request.POST or None, card_enabled=card_enabled)
    if request.method == "POST" and form.is_valid():
        try:
            order = order_create(
                account_id=request.user.pk, pack_id=form.cleaned_data["pack"].pk, method=form.cleaned_data["method"]
            )
        except BillingError as exc:
            form.add_error(None, str(exc))
        else:
            detail = request.build_absolute_uri(reverse("billing:order", args=[order.uuid]))
            if order.method != Order.Method.CARD:
                return redirect(detail)
            try:
                url = checkout_session_create(
                    order=order,
                    success_url=detail,
                    cancel_url=request.build_absolute_uri(reverse("billing:buy")),
                    customer_email=request.user.email,
                )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(url)
    pending = Order.objects.filter(account=request.user, status=Order.Status.PENDING).order_by("-id")[:20]
    return render(
        request, "billing/order_create.html", {"form": form, "card_enabled": card_enabled, "pending": pending}
    )


def _own_order(request, uuid) -> Order:
    return get_object_or_404(Order.objects.select_related("invoice"), uuid=uuid, account=request.user)


@login_required
def order_detail(request, uuid):
    order = _own_order(request, uuid)
    return render(
        request,
        "billing/order_detail.html",
        {
            "order": order,
            "bank": {
                "iban": settings.BANK_IBAN,
                "bic": settings.BANK_BIC,
                "payee": settings.CHEQUE_PAYEE,
                "address": settings.CHEQUE_ADDRESS,
                "seller": settings.SELLER_NAME,
            },
        },
    )


@login_required
def invoice_download(request, uuid):
    invoice = get_object_or_404(Invoice.objects.select_related("order"), order__uuid=uuid, order__account=request.user)
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="invoice-{invoice.number}.pdf"'
    return response


@login_required
def transfer(request):
    form = TransferForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            done = transfer_create(
                sender_id=request.user.pk,
                recipient_account_id=form.cleaned_data["recipient"],
                amount=form.cleaned_data["amount"],
                reference=form.cleaned_data["reference"],
            )
        except BillingError as exc:
            form.add_error(None, str(exc))
        except InsufficientCredits as exc:
            form.add_error(
                "amount", _("Only %(balance)s credits are available.") % {"balance": floatformat(exc.balance, "-3")}
            )
        else:
            messages.success(
                request,
                _("%(amount)s credits sent to %(account)s.") % {"amount": done.amount, "account": done.recipient},
            )
            return redirect("billing:transactions")
    return render(request, "billing/transfer_create.html", {"form": form})


@login_required
def transactions(request):
    filters = TransactionFilterForm(request.GET)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    entries = ledger_entries(account_id=request.user.pk, **criteria)
    if request.GET.get("export") == "csv":
        rows = (
            (e.created_at.isoformat(), e.kind, e.amount, e.balance_after, e.reference)
            for e in entries.order_by("-created_at", "-id")
            .only("created_at", "kind", "amount", "balance_after", "reference")
            .iterator(chunk_size=2000)
        )
        return csv_response(
            filename="transactions.csv",
            header=[_("Date"), _("Kind"), _("Amount"), _("Balance after"), _("Reference")],
            rows=rows,
        )
    page = keyset_page(
        entries.select_related("order__invoice", "campaign"),
        before=request.GET.get("before", ""),
        after=request.GET.get("after", ""),
        size=PAGE_SIZE,
        params=request.GET.dict(),
    )
    export_query = urlencode(
        {**{k: v for k, v in request.GET.items() if k in ("kind", "since", "until")}, "export": "csv"}
    )
    return render(
        request,
        "billing/transaction_list.html",
        {"entries": page.object_list, "page": page, "filters": filters, "export_query": export_query},
    )


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        webhook_handle(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except InvalidWebhook:
        return HttpResponseBadRequest("invalid signature")
    return HttpResponse("ok")
