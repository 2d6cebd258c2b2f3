from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import health


@login_required
def home(request):
    return render(request, "home.html")


@never_cache
@require_GET
def healthz(request):
    """Database, broker, and the last beat tick run by a worker: 200 when all are fine, else 503."""
    checks = health.run_checks()
    healthy = all(check.ok for check in checks)
    body = {"status": "ok" if healthy else "fail", "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
    return JsonResponse(body, status=200 if healthy else 503)
