from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class AccountAdmin(UserAdmin):
    list_display = ["account_id", "email", "company", "mobile", "credit_balance", "email_confirmed_at", "is_staff"]
    search_fields = ["account_id", "email", "company", "mobile"]
    ordering = ["account_id"]
    list_filter = ["is_staff", "is_active"]
    readonly_fields = ["account_id", "credit_balance", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["account_id", "password", "credit_balance"]}),
        ("Profile", {"fields": ["email", "first_name", "last_name", "kind", "company", "mobile"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["account_id", "email", "password1", "password2"]})]

    def get_readonly_fields(self, request, obj=None):
        # The account ID is typed once, at creation, and never edited (ACC-8).
        return self.readonly_fields if obj else ["credit_balance"]
