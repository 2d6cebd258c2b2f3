"""Customer pages of sending: New SMS (with its live summary and address-book picker), My SMS
(scheduled and sent), the campaign detail, the export of sent SMS, and templates."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from smsplatform.exports import csv_response, xlsx_response

from . import composer, selectors
from .forms import CampaignForm, TemplateForm
from .models import Campaign, Template
from .text import PERSONALISATION_FIELDS

SUMMARY_CACHE_SECONDS = 30  # typing re-prices cached recipient counts; a send always recounts
SUMMARY_PERSONALISED_LIMIT = 20_000  # per-contact texts counted live; a send counts them all
EXPORT_HEADER = ("Date", "Number", "Text", "Parts", "Credits", "Status")


def _compose_context(request, form, *, campaign=None) -> dict:
    ids = form["contacts"].value() or []
    group_ids = form["groups"].value() or []
    # Chips for what is already picked (a re-displayed form, an edit, a resend); bad ids are
    # the form's error to report, not this helper's.
    contacts, groups = [], []
    try:
        contacts = list(request.user.contacts.filter(pk__in=[int(i) for i in ids]))
        groups = list(request.user.contact_groups.filter(pk__in=[int(i) for i in group_ids]))
    except (TypeError, ValueError):
        pass
    return {
        "form": form,
        "campaign": campaign,
        "chosen_contacts": contacts,
        "chosen_groups": groups,
        "variables": PERSONALISATION_FIELDS,
        "templates": selectors.template_list(user=request.user).only("id", "name", "text"),
    }


def _saved_notice(request, campaign: Campaign, prepared: composer.Prepared) -> None:
    if prepared.euro_replaced:
        messages.warning(request, _("“€” was replaced by “E” so the text needs one part less."))
    if prepared.deferred_from:
        messages.warning(
            request,
            _(
                "Marketing SMS are not sent between 20:00 and 08:00, on Sundays nor on public holidays: "
                "this one is deferred to %(when)s."
            )
            % {"when": _local(request.user, prepared.scheduled_at)},
        )
    messages.success(
        request,
        _("SMS to %(count)s recipient(s) scheduled for %(when)s (estimated %(credits)s credits).")
        % {
            "count": prepared.estimate.recipients,
            "when": _local(request.user, prepared.scheduled_at),
            "credits": prepared.estimate.credits,
        },
    )


def _local(user, moment) -> str:
    return formats.date_format(timezone.localtime(moment, ZoneInfo(user.time_zone)), "d/m/Y H:i")


@login_required
def new(request):
    """New SMS (SND-2..SND-11). ``?from=<uuid>`` pre-fills a resend; ``?template=<id>`` a text."""
    if request.method == "POST":
        form = CampaignForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                campaign, prepared = composer.campaign_create(user=request.user, draft=form.draft())
            except composer.CampaignRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                _saved_notice(request, campaign, prepared)
                if prepared.scheduled_at > timezone.now():
                    return redirect("campaigns:scheduled")
                return redirect("campaigns:detail", uuid=campaign.uuid)
    else:
        initial = {}
        if source := request.GET.get("from"):
            original = selectors.campaign_get_for_user(user=request.user, campaign_uuid=source)
            initial = CampaignForm.initial_from(original, user=request.user, keep_date=False)
        elif template_id := request.GET.get("template", "").strip():
            if template_id.isdigit():
                initial["text"] = selectors.template_get_for_user(user=request.user, template_id=int(template_id)).text
        form = CampaignForm(initial=initial, user=request.user)
    return render(request, "campaigns/campaign_new.html", _compose_context(request, form))


@login_required
@require_POST
def summary(request):
    """The live part of New SMS (htmx): counter, recipients, cost, preview and notices. Uses
    campaigns.text.analyze and billing.pricing, the same functions that bill."""
    form = CampaignForm(request.POST, user=request.user)
    form.is_valid()
    draft = form.draft()
    text, euro_replaced = draft.final_text()
    estimate = composer.recipients_estimate(
        account_id=request.user.pk,
        kind=draft.kind,
        text=text,
        numbers=draft.numbers,
        contact_ids=draft.contact_ids,
        group_ids=draft.group_ids,
        cache_seconds=SUMMARY_CACHE_SECONDS,
        personalised_limit=SUMMARY_PERSONALISED_LIMIT,
    )
    needs_opt_out = composer.needs_opt_out(kind=draft.kind, sender=draft.sender)
    context = {
        "draft": draft,
        "text": text,
        "info": estimate.longest,
        "estimate": estimate,
        "euro_replaced": euro_replaced,
        "invalid": draft.numbers.invalid,
        "missing_opt_out": needs_opt_out and not composer.has_opt_out(text),
        "stop_mention": composer.stop_mention(),
        "balance": request.user.credit_balance,
    }
    return render(request, "campaigns/includes/composer_summary.html", context)


@login_required
@require_GET
def picker(request):
    """Address-book picker (htmx): groups and a keyset page of contacts matching ``q``."""
    before = request.GET.get("before", "")
    groups, contacts, next_before = selectors.picker_search(
        user=request.user, query=request.GET.get("q", ""), before=int(before) if before.isdigit() else None
    )
    return render(
        request,
        "campaigns/includes/picker_results.html",
        {"groups": groups, "contacts": contacts, "next_before": next_before, "q": request.GET.get("q", "")},
    )


@login_required
def scheduled(request):
    page = selectors.campaign_page(user=request.user, scheduled=True, params=request.GET)
    return render(request, "campaigns/campaign_scheduled.html", {"page": page, "tab": "scheduled"})


@login_required
def sent(request):
    page = selectors.campaign_page(user=request.user, scheduled=False, params=request.GET)
    return render(
        request,
        "campaigns/campaign_sent.html",
        {"page": page, "tab": "sent", "xlsx_max_rows": selectors.XLSX_MAX_ROWS},
    )


@login_required
def detail(request, uuid):
    campaign = selectors.campaign_get_for_user(user=request.user, campaign_uuid=uuid)
    try:
        report_url = reverse("campaigns:report", args=[campaign.uuid])
    except NoReverseMatch:
        report_url = None
    context = {
        "campaign": campaign,
        "counts": selectors.campaign_status_counts(campaign=campaign),
        "report_url": report_url,
        "contacts": campaign.contacts.all()[:50],
        "groups": campaign.groups.all(),
        "scheduled_local": _local(request.user, campaign.scheduled_at) if campaign.scheduled_at else "",
    }
    return render(request, "campaigns/campaign_detail.html", context)


@login_required
def edit(request, uuid):
    campaign = selectors.campaign_get_for_user(user=request.user, campaign_uuid=uuid)
    if campaign.status != Campaign.Status.SCHEDULED:
        messages.error(request, str(composer.CampaignLocked.default_message()))
        return redirect("campaigns:detail", uuid=campaign.uuid)
    if request.method == "POST":
        form = CampaignForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                campaign, prepared = composer.campaign_update(user=request.user, campaign=campaign, draft=form.draft())
            except composer.CampaignRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                _saved_notice(request, campaign, prepared)
                return redirect("campaigns:scheduled")
    else:
        initial = CampaignForm.initial_from(campaign, user=request.user, keep_date=True)
        form = CampaignForm(initial=initial, user=request.user)
    return render(request, "campaigns/campaign_new.html", _compose_context(request, form, campaign=campaign))


@login_required
@require_POST
def copy(request, uuid):
    campaign = selectors.campaign_get_for_user(user=request.user, campaign_uuid=uuid)
    try:
        copied, prepared = composer.campaign_copy(user=request.user, campaign=campaign)
    except composer.CampaignRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("campaigns:scheduled")
    _saved_notice(request, copied, prepared)
    return redirect("campaigns:scheduled")


@login_required
@require_POST
def delete(request, uuid):
    campaign = selectors.campaign_get_for_user(user=request.user, campaign_uuid=uuid)
    try:
        composer.campaign_delete(user=request.user, campaign=campaign)
    except composer.CampaignLocked as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _("The scheduled SMS was deleted: it will not be sent."))
    return redirect("campaigns:scheduled")


@login_required
@require_POST
def hide(request, uuid):
    campaign = selectors.campaign_get_for_user(user=request.user, campaign_uuid=uuid)
    composer.campaign_hide(user=request.user, campaign=campaign)
    messages.success(
        request, _("Removed from the list. Sent messages cannot be recalled; your statement is unchanged.")
    )
    return redirect("campaigns:sent")


@login_required
@require_GET
def export(request, fmt):
    """Every message of "Sent SMS", streamed (SND-17); cells escaped by smsplatform.exports."""
    if fmt not in ("csv", "xlsx"):
        raise Http404
    if fmt == "xlsx":
        rows = selectors.sent_messages_rows(user=request.user, limit=selectors.XLSX_MAX_ROWS)
        return xlsx_response(filename="sent-sms.xlsx", header=EXPORT_HEADER, rows=_export_rows(request.user, rows))
    rows = selectors.sent_messages_rows(user=request.user)
    return csv_response(filename="sent-sms.csv", header=EXPORT_HEADER, rows=_export_rows(request.user, rows))


def _export_rows(user, rows):
    for sent_at, phone, text, parts, credits, status in rows:
        yield (_local(user, sent_at) if sent_at else "", phone, text, parts, credits, status)


@login_required
def template_list(request):
    return render(request, "campaigns/template_list.html", {"templates": selectors.template_list(user=request.user)})


@login_required
def template_edit(request, template_id=None):
    template = (
        selectors.template_get_for_user(user=request.user, template_id=template_id)
        if template_id
        else Template(account=request.user)
    )
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Template saved."))
        return redirect("campaigns:templates")
    return render(request, "campaigns/template_form.html", {"form": form, "template": template})


@login_required
@require_POST
def template_delete(request, template_id):
    selectors.template_get_for_user(user=request.user, template_id=template_id).delete()
    messages.success(request, _("Template deleted."))
    return redirect("campaigns:templates")
