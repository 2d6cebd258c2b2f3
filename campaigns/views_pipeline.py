"""Pages of the sending pipeline: receipt report (SND-16), received replies (SND-8), carrier callbacks (GW-2)."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import pipeline, receipts
from .models import Campaign, Inbound, Message

PAGE_SIZE = 50
ERROR = "error"
LIVE_CAMPAIGN_STATES = (Campaign.Status.SCHEDULED, Campaign.Status.DISPATCHING, Campaign.Status.SENDING)


@dataclass
class KeysetPage:
    """A page of rows ordered by descending id, for includes/pagination.html."""

    rows: list
    has_next: bool
    next_query: str
    has_previous: bool = False
    previous_query: str = ""


def _keyset(queryset, request, params: dict) -> KeysetPage:
    after = request.GET.get("after", "")
    if after.isdigit():
        queryset = queryset.filter(id__lt=int(after))
    rows = list(queryset.order_by("-id")[: PAGE_SIZE + 1])
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_query = urlencode({**params, "after": rows[-1].id}) if has_next else ""
    first_query = urlencode(params)
    return KeysetPage(rows, has_next, next_query, has_previous=after.isdigit(), previous_query=first_query)


def _campaign_for(request, uuid) -> Campaign:
    return get_object_or_404(Campaign, uuid=uuid, account=request.user)


def _report_counts(campaign: Campaign) -> tuple[list[dict], int, bool, int]:
    counts = dict(
        Message.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    rows = [
        {"status": status, "label": label, "count": counts[status]}
        for status, label in Message.Status.choices
        if counts.get(status)
    ]
    waiting = any(s < Message.Status.RECEIVED for s in counts)
    live = campaign.status in LIVE_CAMPAIGN_STATES or (waiting and campaign.status == Campaign.Status.DONE)
    final = sum(n for s, n in counts.items() if s >= Message.Status.RECEIVED)
    return rows, sum(counts.values()), live, final


@login_required
def report(request, uuid):
    """Counts per status and the per-recipient detail, filterable by status; htmx polls it while live."""
    campaign = _campaign_for(request, uuid)
    status = request.GET.get("status", "")
    recipients = Message.objects.filter(campaign=campaign).only("id", "phone", "status", "error", "status_at", "parts")
    if status == ERROR:
        recipients = recipients.filter(status__gte=Message.Status.INVALID)
    elif status.isdigit() and int(status) in Message.Status.values:
        recipients = recipients.filter(status=int(status))
    else:
        status = ""
    counts, total, live, final = _report_counts(campaign)
    context = {
        "campaign": campaign,
        "counts": counts,
        "total": total,
        "live": live,
        "final": final,
        "status": status,
        "errors": sum(c["count"] for c in counts if c["status"] >= Message.Status.INVALID),
        "page": _keyset(recipients, request, {"status": status} if status else {}),
        "statuses": Message.Status.choices,
    }
    template = "campaigns/report_live.html" if request.htmx else "campaigns/report_detail.html"
    return render(request, template, context)


@login_required
@require_POST
def report_delete_error_numbers(request, uuid):
    campaign = _campaign_for(request, uuid)
    deleted = pipeline.campaign_error_contacts_delete(campaign_id=campaign.pk, account_id=request.user.pk)
    flash.success(request, _("%(count)d contact(s) deleted from your address book.") % {"count": deleted})
    return redirect("campaigns:report", uuid=campaign.uuid)


@login_required
def replies(request):
    """The account's received replies, newest first, with the message and campaign they answer."""
    queryset = Inbound.objects.filter(account=request.user).select_related("campaign", "message")
    return render(request, "campaigns/replies_list.html", {"page": _keyset(queryset, request, {})})


@csrf_exempt
@require_POST
def carrier_callback(request, alias):
    """Receipts and replies posted by a carrier, signed with ``SMS_CALLBACK_SECRET`` (README)."""
    if alias not in settings.SMS_GATEWAYS:
        raise Http404
    try:
        events = receipts.carrier_callback_apply(
            gateway_alias=alias,
            body=request.body,
            timestamp=request.headers.get("X-Sms-Timestamp", ""),
            signature=request.headers.get("X-Sms-Signature", ""),
        )
    except receipts.CallbackRejected as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    return JsonResponse({"receipts": len(events.receipts), "inbound": len(events.inbound)})
