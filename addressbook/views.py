from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def contact_list(request):
    return render(request, "addressbook/contact_list.html")
