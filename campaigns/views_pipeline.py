"""Pages of the sending pipeline: receipt report (SND-16), received replies (SND-8), carrier callbacks (GW-2)."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import pipeline, receipts, selectors
from .models import Campaign, Inbound, Message

PAGE_SIZE = 50
ERROR = "error"
ALL_STATUSES = tuple(Message.Status.values)
ERROR_STATUSES = tuple(s for s in ALL_STATUSES if s >= Message.Status.INVALID)  # the "error" filter
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
    return selectors.campaign_get_for_user(user=request.user, campaign_uuid=uuid)


@login_required
def report(request, uuid):
    """Counts per status and the per-recipient detail, filterable by status; htmx polls it while
    live. Five queries whatever the campaign's size, filter or page (session, user, campaign,
    counts, rows)."""
    status = request.GET.get("status", "")
    if status == ERROR:
        statuses = ERROR_STATUSES
    elif status.isdigit() and int(status) in ALL_STATUSES:
        statuses = (int(status),)
    else:
        status, statuses = "", ALL_STATUSES
    after = request.GET.get("after", "")
    data = selectors.campaign_report(
        user=request.user,
        campaign_uuid=uuid,
        statuses=statuses,
        below=int(after) if after.isdigit() else None,
        size=PAGE_SIZE,
    )
    campaign, counts, rows = data.campaign, data.counts, data.rows
    params = {"status": status} if status else {}
    page = KeysetPage(
        rows,
        data.has_next,
        urlencode({**params, "after": rows[-1].id}) if data.has_next else "",
        has_previous=after.isdigit(),
        previous_query=urlencode(params),
    )
    live = campaign.status in LIVE_CAMPAIGN_STATES or (counts.waiting and campaign.status == Campaign.Status.DONE)
    context = {
        "campaign": campaign,
        "counts": counts.rows,
        "total": counts.total,
        "live": live,
        "final": counts.final,
        "status": status,
        "errors": counts.errors,
        "page": page,
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
