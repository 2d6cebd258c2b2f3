from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .models import LedgerEntry


@login_required
def transactions(request):
    entries = LedgerEntry.objects.filter(account=request.user).order_by("-id")[:50]
    return render(request, "billing/transactions.html", {"entries": entries})
