from django.conf import settings


def platform(request):
    return {"SUPPORT_PHONE": settings.SUPPORT_PHONE, "SUPPORT_EMAIL": settings.SUPPORT_EMAIL}
