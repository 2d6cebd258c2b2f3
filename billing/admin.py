from django.contrib import admin

from .models import LedgerEntry


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only: the ledger is append-only; staff adjust credits through a service, not here."""

    list_display = ["created_at", "account", "kind", "amount", "balance_after", "reference"]
    list_filter = ["kind"]
    search_fields = ["account__account_id", "reference"]
    list_select_related = ["account"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
