from django.contrib.auth.backends import ModelBackend


class AccountBackend(ModelBackend):
    """Log in by account ID (case-insensitive). Blocked accounts cannot log in."""

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and not getattr(user, "is_blocked", False)
