from django.contrib import admin

from . import services
from .models import BlacklistEntry, Contact, ContactImport, Group


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("mobile", "last_name", "first_name", "company", "account")
    search_fields = ("mobile", "last_name", "email")
    raw_id_fields = ("account",)
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # A name, company or email changed here must be findable by name search too.
        services.search_index_refresh(account_id=obj.account_id, contact_ids=[obj.pk])


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "account")
    raw_id_fields = ("account",)


@admin.register(BlacklistEntry)
class BlacklistEntryAdmin(admin.ModelAdmin):
    list_display = ("number", "source", "account", "created_at")
    search_fields = ("number",)
    raw_id_fields = ("account",)


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    list_display = ("original_name", "account", "status", "mode", "total_rows", "imported", "rejected", "created_at")
    list_filter = ("status", "mode")
    raw_id_fields = ("account", "group")
    readonly_fields = ("uuid", "consent_at", "consent_text", "search_indexed_at")
