from django import forms
from django.utils.translation import gettext_lazy as _

from . import importers
from .models import ContactImport
from .services import CONSENT_TEXT

FIELD_LABELS = {
    "last_name": _("Last name"),
    "first_name": _("First name"),
    "mobile": _("Mobile"),
    "email": _("Email"),
    "company": _("Company"),
}


class ContactForm(forms.Form):
    mobile = forms.CharField(label=_("Mobile"), max_length=40, widget=forms.TextInput(attrs={"type": "tel"}))
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    company = forms.CharField(label=_("Company"), max_length=200, required=False)


class ContactCreateForm(ContactForm):
    allow_duplicate = forms.BooleanField(
        label=_("Add anyway if this number is already in my address book"), required=False
    )


class ContactGroupsForm(forms.Form):
    groups = forms.MultipleChoiceField(label=_("Groups"), required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].choices = [(g.id, g.name) for g in groups]


class BulkActionForm(forms.Form):
    ACTIONS = [
        ("add", _("Add to group")),
        ("remove", _("Remove from group")),
        ("new_group", _("Create a group with them")),
        ("delete", _("Delete")),
    ]
    action = forms.ChoiceField(label=_("With the selected contacts"), choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(coerce=int, required=True, choices=())
    group = forms.IntegerField(required=False)
    group_name = forms.CharField(label=_("New group name"), max_length=100, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Ids are checked against the account by the services; here only their shape.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()

    def clean(self):
        data = super().clean()
        if data.get("action") in ("add", "remove") and not data.get("group"):
            raise forms.ValidationError(_("Choose a group."))
        return data


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)


class BlacklistAddForm(forms.Form):
    number = forms.CharField(label=_("Number"), max_length=40, widget=forms.TextInput(attrs={"type": "tel"}))


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV or text (any separator, UTF-8, Windows or Unicode text), .xlsx or .xls."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx,.xls"}),
    )


ENCODINGS = [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 (BOM)"), ("cp1252", "Windows-1252"), ("utf-16", "UTF-16")]


class ImportOptionsForm(forms.Form):
    """Column mapping and options; ``columns`` is the number of columns in the preview."""

    separator = forms.ChoiceField(label=_("Separator"), required=False)
    encoding = forms.ChoiceField(label=_("Encoding"), required=False, choices=ENCODINGS)
    has_header = forms.BooleanField(label=_("The first row holds column names"), required=False)
    mode = forms.ChoiceField(
        label=_("Import into"),
        choices=[
            (ContactImport.Mode.CONTACTS, _("my contacts")),
            (ContactImport.Mode.BLACKLIST, _("my blacklist (these numbers will never receive SMS)")),
        ],
        initial=ContactImport.Mode.CONTACTS,
        widget=forms.RadioSelect,
    )
    group_name = forms.CharField(
        label=_("Add the contacts to the group"),
        max_length=100,
        required=False,
        help_text=_("Created if it does not exist. Leave empty for no group."),
    )
    consent = forms.BooleanField(label=CONSENT_TEXT, required=False)

    def __init__(self, *args, columns: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["separator"].choices = [(k, f"{v} ({k!r})") for k, v in importers.SEPARATORS.items()]
        choices = [("", _("(not imported)"))] + [(str(i), _("Column %(n)d") % {"n": i + 1}) for i in range(columns)]
        for name, label in FIELD_LABELS.items():
            self.fields[f"map_{name}"] = forms.TypedChoiceField(
                label=label, choices=choices, required=name == "mobile", coerce=int, empty_value=None
            )

    def mapping(self) -> dict[str, int]:
        mapping = {name: self.cleaned_data.get(f"map_{name}") for name in FIELD_LABELS}
        return {k: v for k, v in mapping.items() if v is not None}

    def clean(self):
        data = super().clean()
        used = [v for v in self.mapping().values()]
        if len(used) != len(set(used)):
            raise forms.ValidationError(_("A column is chosen for two fields."))
        return data
