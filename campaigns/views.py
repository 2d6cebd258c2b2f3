from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def new(request):
    return render(request, "campaigns/new.html")


@login_required
def sent(request):
    return render(request, "campaigns/sent.html")
