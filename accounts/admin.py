from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from addressbook.phones import normalize_phone

from . import services
from .models import AccountEvent, CertifiedNumber, User


class AccountEventInline(admin.TabularInline):
    """The account's audit trail: read-only, written by services only."""

    model = AccountEvent
    fk_name = "account"
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "actor", "note"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class AccountAdmin(UserAdmin):
    list_display = [
        "account_id",
        "email",
        "company",
        "mobile",
        "credit_balance",
        "email_confirmed",
        "mobile_certified",
        "blocked",
        "is_staff",
    ]
    search_fields = ["account_id", "email", "company", "mobile"]
    ordering = ["account_id"]
    list_filter = [
        "is_staff",
        "is_active",
        ("email_confirmed_at", admin.EmptyFieldListFilter),
        ("mobile_certified_at", admin.EmptyFieldListFilter),
        ("blocked_at", admin.EmptyFieldListFilter),
    ]
    readonly_fields = [
        "account_id",
        "credit_balance",
        "credit_reserved",
        "email_confirmed_at",
        "mobile",
        "mobile_certified_at",
        "blocked_at",
        "consent_at",
        "last_login",
        "date_joined",
    ]
    fieldsets = [
        (None, {"fields": ["account_id", "password", "credit_balance", "credit_reserved"]}),
        (
            _("Profile"),
            {"fields": ["email", "first_name", "last_name", "kind", "company", "vat_number", "mobile"]},
        ),
        (_("Billing address"), {"fields": ["address_line1", "address_line2", "postal_code", "city", "country"]}),
        (_("Preferences"), {"fields": ["time_zone", "language", "default_region", "credit_alert_threshold"]}),
        (
            _("State"),
            {"fields": ["email_confirmed_at", "mobile_certified_at", "blocked_at", "consent_at"]},
        ),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["account_id", "email", "password1", "password2"]})]
    inlines = [AccountEventInline]
    actions = ["activate_accounts", "block_accounts", "unblock_accounts"]

    def get_readonly_fields(self, request, obj=None):
        # The account ID is typed once, at creation, and never edited (ACC-8); the balance moves
        # only through the ledger, the reservation only through the sending pipeline.
        return self.readonly_fields if obj else ["credit_balance", "credit_reserved"]

    def get_search_results(self, request, queryset, search_term):
        # Staff type numbers as customers say them ("06 12 34 56 78"); mobiles are stored in E.164.
        filtered, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        phone = normalize_phone(search_term, default_region=settings.DEFAULT_PHONE_REGION) if search_term else None
        if phone is not None and phone.valid:
            filtered = filtered | queryset.filter(mobile=phone.e164)
        return filtered, may_have_duplicates

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    @admin.display(boolean=True, description=_("email confirmed"), ordering="email_confirmed_at")
    def email_confirmed(self, obj):
        return obj.is_email_confirmed

    @admin.display(boolean=True, description=_("mobile certified"), ordering="mobile_certified_at")
    def mobile_certified(self, obj):
        return obj.is_mobile_certified

    @admin.display(boolean=True, description=_("blocked"), ordering="blocked_at")
    def blocked(self, obj):
        return obj.is_blocked

    def _run(self, request, queryset, service, done_message):
        changed = sum(service(account=account, actor=request.user, note="admin action") for account in queryset)
        self.message_user(request, done_message(changed), messages.SUCCESS)

    @admin.action(description=_("Activate (confirm the email of) selected accounts"), permissions=["change"])
    def activate_accounts(self, request, queryset):
        self._run(
            request,
            queryset,
            services.account_activate,
            lambda n: ngettext("%(n)d account activated.", "%(n)d accounts activated.", n) % {"n": n},
        )

    @admin.action(description=_("Block selected accounts (no login, no sending)"), permissions=["change"])
    def block_accounts(self, request, queryset):
        self._run(
            request,
            queryset,
            services.account_block,
            lambda n: ngettext("%(n)d account blocked.", "%(n)d accounts blocked.", n) % {"n": n},
        )

    @admin.action(description=_("Unblock selected accounts"), permissions=["change"])
    def unblock_accounts(self, request, queryset):
        self._run(
            request,
            queryset,
            services.account_unblock,
            lambda n: ngettext("%(n)d account unblocked.", "%(n)d accounts unblocked.", n) % {"n": n},
        )


@admin.register(CertifiedNumber)
class CertifiedNumberAdmin(admin.ModelAdmin):
    """Numbers that earned the bonus; read-only (a number earns it once, ever)."""

    list_display = ["phone", "account", "certified_at"]
    search_fields = ["phone", "account__account_id"]
    list_select_related = ["account"]
    readonly_fields = ["phone", "account", "certified_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
