from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import MinValueValidator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .models import LedgerEntry, Order, Pack, Rate

CREDIT_FIELD = {"max_digits": 14, "decimal_places": 3}


class BuyForm(forms.Form):
    pack = forms.ModelChoiceField(
        label=_("Pack"), queryset=Pack.objects.filter(active=True), widget=forms.RadioSelect, empty_label=None
    )
    method = forms.ChoiceField(label=_("Payment method"), widget=forms.RadioSelect)

    def __init__(self, *args, card_enabled: bool, **kwargs):
        super().__init__(*args, **kwargs)
        methods = Order.Method.choices
        self.fields["method"].choices = methods if card_enabled else [m for m in methods if m[0] != Order.Method.CARD]


class TransferForm(forms.Form):
    recipient = forms.CharField(label=_("Recipient account ID"), max_length=30)
    amount = forms.DecimalField(label=_("Credits"), validators=[MinValueValidator(Decimal("0.001"))], **CREDIT_FIELD)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False)


class TransactionFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", pgettext_lazy("kind", "All")), *LedgerEntry.Kind.choices]
    )
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


def region_choices():
    names = dict(Rate.objects.values_list("region", "country_name"))
    return sorted(((region, f"{name} ({region})") for region, name in names.items()), key=lambda c: c[1])


class SimulatorForm(forms.Form):
    kind = forms.ChoiceField(label=_("Message type"), choices=Rate.Kind.choices, initial=Rate.Kind.SMS)
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 4}), max_length=2000)


class SimulatorRecipientsForm(forms.Form):
    region = forms.ChoiceField(label=_("Country"), required=False)
    count = forms.IntegerField(label=_("Recipients"), min_value=0, max_value=10_000_000, required=False)

    def __init__(self, *args, region_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [("", "—"), *region_choices]


SimulatorRecipientsFormSet = forms.formset_factory(SimulatorRecipientsForm, extra=0, min_num=4, max_num=20)


class CreditAdjustmentForm(forms.Form):
    account = forms.ModelChoiceField(
        label=_("Account"),
        queryset=get_user_model().objects.all(),
        to_field_name="account_id",
        widget=forms.TextInput,
        help_text=_("Account ID."),
    )
    amount = forms.DecimalField(label=_("Credits (negative to debit)"), **CREDIT_FIELD)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("The amount cannot be zero."))
        return amount
