"""New SMS and template forms: shapes only (numbers parsed, ids scoped, date parsed); the sending
rules that need the estimate live in composer.campaign_prepare."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from addressbook.models import Contact, Group

from . import scheduling
from .composer import Draft, ParsedNumbers, parse_numbers
from .models import Campaign, Template
from .text import SENDER_RULES, is_valid_sender


class IdListField(forms.Field):
    """Ids posted as repeated hidden inputs (picker selections): never rendered as a <select>,
    which would not survive a 1,000,000-contact address book."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> tuple[int, ...]:
        if not value:
            return ()
        if isinstance(value, str | int):
            value = [value]
        try:
            return tuple(dict.fromkeys(int(item) for item in value))
        except (TypeError, ValueError):
            raise forms.ValidationError(_("Invalid selection."), code="invalid") from None


class CampaignForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=Campaign.Kind.choices, initial=Campaign.Kind.SMS)
    recipients = forms.CharField(
        label=_("Numbers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text=_(
            "One or many numbers separated by commas, spaces, semicolons or new lines: "
            "06 12 34 56 78, +33 6 12 34 56 78, 0033612345678, 33612345678."
        ),
    )
    contacts = IdListField(required=False)
    groups = IdListField(required=False)
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 6}))
    sender = forms.CharField(
        label=_("Custom sender (optional)"),
        required=False,
        max_length=11,
        help_text=_("Pro SMS only. With a custom sender, recipients cannot reply."),
    )
    is_marketing = forms.BooleanField(
        label=_("Marketing message (promotion, offer)"),
        required=False,
        help_text=_(
            "Marketing messages are only sent Monday to Saturday, 08:00-20:00, outside French public holidays."
        ),
    )
    append_stop = forms.BooleanField(label=_("Append the STOP mention (opt-out)"), required=False)
    send_at = forms.CharField(
        label=_("Send date (optional)"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "dd/mm/yyyy hh:mm", "autocomplete": "off"}),
        help_text=_("Leave empty to send now. Your time zone: %(tz)s."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.parsed_numbers = ParsedNumbers()
        self.fields["send_at"].help_text = self.fields["send_at"].help_text % {"tz": user.time_zone}

    def clean_recipients(self) -> ParsedNumbers:
        kind = self.cleaned_data.get("kind", Campaign.Kind.SMS)
        # Kept aside: an invalid entry makes the field an error, yet the live summary still
        # counts the valid numbers and lists the invalid ones.
        self.parsed_numbers = parse_numbers(
            raw=self.cleaned_data["recipients"], default_region=self.user.default_region, kind=kind
        )
        return self.parsed_numbers

    def _scoped_ids(self, name: str, model) -> tuple[int, ...]:
        ids = self.cleaned_data[name]
        if not ids:
            return ()
        found = set(model.objects.filter(account=self.user, pk__in=ids).values_list("pk", flat=True))
        if len(found) != len(ids):
            raise forms.ValidationError(_("Some selected entries no longer exist; please pick them again."))
        return ids

    def clean_contacts(self) -> tuple[int, ...]:
        return self._scoped_ids("contacts", Contact)

    def clean_groups(self) -> tuple[int, ...]:
        return self._scoped_ids("groups", Group)

    def clean_sender(self) -> str:
        sender = self.cleaned_data["sender"]
        if sender and not is_valid_sender(sender):
            raise forms.ValidationError(SENDER_RULES)
        return sender

    def clean_send_at(self):
        value = self.cleaned_data["send_at"].strip()
        if not value:
            return None
        try:
            return scheduling.parse_send_date(value, time_zone=self.user.time_zone)
        except scheduling.InvalidSendDate:
            raise forms.ValidationError(
                _("Type the date as dd/mm/yyyy hh:mm (for example 24/12/2026 09:30); that time must exist."),
                code="invalid",
            ) from None

    def clean(self):
        data = super().clean()
        parsed: ParsedNumbers | None = data.get("recipients")
        if parsed and parsed.invalid:
            self.add_error(
                "recipients",
                [
                    forms.ValidationError(_("“%(entry)s”: %(reason)s"), params={"entry": entry, "reason": reason})
                    for entry, reason in parsed.invalid
                ],
            )
        if data.get("kind") == Campaign.Kind.VOICE and data.get("sender"):
            self.add_error("sender", _("A custom sender is only available for Pro SMS."))
        if parsed is not None and not (parsed.numbers or parsed.invalid or data.get("contacts") or data.get("groups")):
            self.add_error("recipients", _("Add at least one recipient: a number, a contact or a group."))
        return data

    def draft(self) -> Draft:
        data = self.cleaned_data
        return Draft(
            kind=data.get("kind") or Campaign.Kind.SMS,
            text=data.get("text", ""),
            sender=data.get("sender", ""),
            is_marketing=data.get("is_marketing", False),
            append_stop=data.get("append_stop", False),
            numbers=self.parsed_numbers,
            contact_ids=data.get("contacts") or (),
            group_ids=data.get("groups") or (),
            send_at=data.get("send_at"),
        )

    @classmethod
    def initial_from(cls, campaign: Campaign, *, user, keep_date: bool) -> dict:
        """Initial data that re-creates ``campaign`` in the form (edit, resend)."""
        initial = {
            "kind": campaign.kind,
            "recipients": "\n".join(campaign.numbers),
            "contacts": list(campaign.contacts.values_list("id", flat=True)),
            "groups": list(campaign.groups.values_list("id", flat=True)),
            "text": campaign.text,
            "sender": campaign.sender,
            "is_marketing": campaign.is_marketing,
        }
        if keep_date and campaign.scheduled_at:
            local = timezone.localtime(campaign.scheduled_at, timezone=ZoneInfo(user.time_zone))
            initial["send_at"] = local.strftime(scheduling.DATE_FORMAT)
        return initial


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ["name", "text"]
        widgets = {"text": forms.Textarea(attrs={"rows": 6})}
