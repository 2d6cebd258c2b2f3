"""Staff views of the sending pipeline (ADM-1): read-only history, replies, gateway health."""

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from smsplatform.admin import ReadOnlyAdmin

from .models import Campaign, GatewayHealth, Inbound, Message


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = (
        "uuid",
        "account",
        "kind",
        "status",
        "scheduled_at",
        "recipients_count",
        "credits_reserved",
        "credits_debited",
    )
    list_filter = ("status", "kind", "gateway")
    search_fields = ("uuid", "account__account_id", "account__email")
    list_select_related = ("account",)
    raw_id_fields = ("account", "copied_from")
    show_full_result_count = False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "phone", "account", "status", "gateway", "carrier_id", "credits", "status_at")
    list_filter = ("status", "gateway")
    search_fields = ("=phone", "=carrier_id")
    list_select_related = ("account",)
    raw_id_fields = ("campaign", "account")
    show_full_result_count = False  # millions of rows: no exact count per page


@admin.register(Inbound)
class InboundAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "sender", "text", "is_stop", "account", "gateway")
    list_filter = ("is_stop", "gateway")
    search_fields = ("=sender",)
    list_select_related = ("account",)
    raw_id_fields = ("account", "message", "campaign")
    show_full_result_count = False


@admin.register(GatewayHealth)
class GatewayHealthAdmin(ReadOnlyAdmin):
    list_display = (
        "alias",
        "link_state",
        "last_submit_at",
        "submitted",
        "rejected",
        "errors",
        "error_rate_display",
        "queue_depth",
    )
    readonly_fields = list_display + ("last_error", "last_error_at")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "link_statuses": carrier_link_statuses()}
        # Queue depth for every alias in one grouped query (partial index on queued messages).
        self._depths = dict(
            Message.objects.filter(status__in=[Message.Status.QUEUED, Message.Status.SUBMITTING])
            .values_list("gateway")
            .annotate(n=Count("id", filter=Q(status__lte=Message.Status.SUBMITTING)))
        )
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("carrier link"))
    def link_state(self, obj):
        status = carrier_link_statuses().get(obj.alias)
        return f"{status.state}: {status.detail}" if status else "—"

    @admin.display(description=_("error rate"))
    def error_rate_display(self, obj):
        return f"{obj.error_rate:.1%}"

    @admin.display(description=_("queue depth"))
    def queue_depth(self, obj):
        return getattr(self, "_depths", {}).get(obj.alias, 0)


def carrier_link_statuses() -> dict:
    """The connector-recorded link state of every configured SMPP alias (GW-1: e.g. bad credentials)."""
    from .gateways.smpp.status import gateway_status

    return {
        alias: gateway_status(alias)
        for alias, config in settings.SMS_GATEWAYS.items()
        if config["BACKEND"].startswith("campaigns.gateways.smpp")
    }
