import zoneinfo

from django.utils import timezone, translation


class AccountMiddleware:
    """Activate the logged-in account's time zone and language for the request: forms and dates
    are shown in them and the composer schedules in them. Must come after AuthenticationMiddleware.

    Blocked accounts need nothing here: ``AccountBackend.get_user`` refuses them, so their open
    sessions become anonymous at the next request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        try:
            timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        if user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = translation.get_language()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
