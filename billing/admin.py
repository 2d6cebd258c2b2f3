from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from smsplatform.admin import ReadOnlyAdmin

from .forms import CreditAdjustmentForm
from .models import Invoice, LedgerEntry, Order, Pack, Rate, Transfer
from .services import BillingError, InsufficientCredits, credit_adjust, order_cancel, order_mark_paid


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Read-only: the ledger is append-only. Credit adjustments go through ``credit_adjust`` (ADM-1)."""

    list_display = ["created_at", "account", "kind", "amount", "balance_after", "reference", "created_by"]
    list_filter = ["kind"]
    search_fields = ["account__account_id", "reference"]
    list_select_related = ["account", "created_by"]
    change_list_template = "admin/billing/ledgerentry/change_list.html"
    show_full_result_count = False  # COUNT(*) over millions of entries on every page

    def get_urls(self):
        adjust = path("adjust/", self.admin_site.admin_view(self.adjust_view), name="billing_ledgerentry_adjust")
        return [adjust, *super().get_urls()]

    def adjust_view(self, request):
        """Staff credit adjustment with a mandatory reason: one ledger entry, never a balance edit."""
        if not request.user.has_perm("billing.view_ledgerentry") or not request.user.has_perm("accounts.change_user"):
            return redirect("admin:index")
        form = CreditAdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = credit_adjust(
                    account_id=form.cleaned_data["account"].pk,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    by_user_id=request.user.pk,
                )
            except (BillingError, InsufficientCredits) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _("Adjusted %(account)s by %(amount)s credits.")
                    % {"account": form.cleaned_data["account"], "amount": entry.amount},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:billing_ledgerentry_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Credit adjustment"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/credit_adjust.html", context)


@admin.register(Pack)
class PackAdmin(admin.ModelAdmin):
    list_display = ["credits", "price_eur", "unit_price", "active", "position"]
    list_editable = ["price_eur", "active", "position"]


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    list_display = ["country_name", "region", "calling_code", "kind", "credits_per_part"]
    list_editable = ["credits_per_part"]
    list_filter = ["kind"]
    search_fields = ["country_name", "region"]
    list_per_page = 100


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "created_at", "account", "credits", "price_eur", "method", "status", "paid_at"]
    list_filter = ["status", "method"]
    search_fields = ["account__account_id", "uuid", "stripe_session_id"]
    list_select_related = ["account"]
    readonly_fields = [f.name for f in Order._meta.fields]
    actions = ["mark_paid", "cancel"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark paid (credits the account, issues the invoice)"), permissions=["change"])
    def mark_paid(self, request, queryset):
        paid = 0
        for order_id in queryset.values_list("pk", flat=True):
            try:
                _order, paid_now = order_mark_paid(order_id=order_id, by_user_id=request.user.pk)
            except BillingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                paid += paid_now
        self.message_user(request, _("%(count)d order(s) marked paid.") % {"count": paid}, messages.SUCCESS)

    @admin.action(description=_("Cancel pending orders"), permissions=["change"])
    def cancel(self, request, queryset):
        for order_id in queryset.filter(status=Order.Status.PENDING).values_list("pk", flat=True):
            order_cancel(order_id=order_id)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "issued_at", "buyer_name", "buyer_company", "amount_excl_vat", "amount_incl_vat"]
    search_fields = ["number", "buyer_name", "buyer_company"]


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "sender", "recipient", "amount", "reference"]
    search_fields = ["sender__account_id", "recipient__account_id", "reference"]
    list_select_related = ["sender", "recipient"]
