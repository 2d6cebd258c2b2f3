"""Address book pages (ADR-1..ADR-5): thin views that parse, call one service or selector, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from smsplatform.exports import csv_response, xlsx_response

from . import importers, selectors, services
from .forms import (
    BlacklistAddForm,
    BulkActionForm,
    ContactCreateForm,
    ContactForm,
    ContactGroupsForm,
    GroupForm,
    ImportOptionsForm,
    ImportUploadForm,
)
from .models import ContactImport


def _int(value) -> int | None:
    return int(value) if value and str(value).isdigit() else None


def _errors_to_form(form, error: ValidationError):
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@login_required
def contact_list(request):
    query = request.GET.get("q", "").strip()[:100]
    group_id = _int(request.GET.get("group"))
    page = selectors.contact_page(
        account=request.user,
        query=query,
        group_id=group_id,
        after=_int(request.GET.get("after")),
        before=_int(request.GET.get("before")),
    )
    groups = selectors.groups_with_sizes(account=request.user)
    context = {
        "page": page,
        "query": query,
        "group_id": group_id,
        "groups": groups,
        "bulk_form": BulkActionForm(),
        "search_indexing": selectors.contact_imports_indexing(account=request.user),
    }
    return render(request, "addressbook/contact_list.html", context)


@login_required
def contact_create(request):
    form = ContactCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.contact_create(account=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, _("Contact %(contact)s added.") % {"contact": contact})
            return redirect("addressbook:contacts")
    return render(request, "addressbook/contact_form.html", {"form": form})


@login_required
def contact_edit(request, pk: int):
    contact = selectors.contact_get(account=request.user, contact_id=pk)
    groups = selectors.groups_with_sizes(account=request.user)
    if request.method == "POST" and "groups_submit" in request.POST:
        groups_form = ContactGroupsForm(request.POST, groups=groups)
        if groups_form.is_valid():
            services.contact_set_groups(contact=contact, group_ids=[int(g) for g in groups_form.cleaned_data["groups"]])
            messages.success(request, _("Groups saved."))
            return redirect("addressbook:contact_edit", pk=contact.pk)
        form = ContactForm(initial=_contact_initial(contact))
    else:
        form = ContactForm(request.POST or None, initial=_contact_initial(contact))
        groups_form = ContactGroupsForm(groups=groups, initial={"groups": [g.id for g in contact.groups.all()]})
        if request.method == "POST" and form.is_valid():
            try:
                services.contact_update(contact=contact, **form.cleaned_data)
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, _("Contact saved."))
                return redirect("addressbook:contacts")
    return render(
        request, "addressbook/contact_form.html", {"form": form, "contact": contact, "groups_form": groups_form}
    )


def _contact_initial(contact):
    return {f: getattr(contact, f) for f in ("mobile", "last_name", "first_name", "email", "company")}


@login_required
@require_POST
def contact_delete(request, pk: int):
    contact = selectors.contact_get(account=request.user, contact_id=pk)
    services.contacts_delete(account=request.user, contact_ids=[contact.pk])
    messages.success(request, _("Contact deleted."))
    return redirect("addressbook:contacts")


@login_required
@require_POST
def contacts_bulk(request):
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Select contacts and an action (and a group where needed)."))
        return redirect(request.POST.get("next") or "addressbook:contacts")
    action, ids = form.cleaned_data["action"], form.cleaned_data["ids"]
    if action == "delete":
        n = services.contacts_delete(account=request.user, contact_ids=ids)
        messages.success(request, _("%(n)d contacts deleted.") % {"n": n})
    elif action == "new_group":
        try:
            group = services.group_create(account=request.user, name=form.cleaned_data["group_name"], contact_ids=ids)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Group %(name)s created.") % {"name": group.name})
    else:
        group = selectors.group_get(account=request.user, group_id=form.cleaned_data["group"])
        if action == "add":
            n = services.group_add_contacts(group=group, contact_ids=ids)
            messages.success(request, _("%(n)d contacts added to %(group)s.") % {"n": n, "group": group.name})
        else:
            n = services.group_remove_contacts(group=group, contact_ids=ids)
            messages.success(request, _("%(n)d contacts removed from %(group)s.") % {"n": n, "group": group.name})
    return redirect("addressbook:contacts")


@login_required
def group_list(request):
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_create(account=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, _("Group created."))
            return redirect("addressbook:groups")
    groups = selectors.groups_with_sizes(account=request.user)
    return render(request, "addressbook/group_list.html", {"groups": groups, "form": form})


@login_required
@require_POST
def group_delete(request, pk: int):
    group = selectors.group_get(account=request.user, group_id=pk)
    services.group_delete(group=group)
    messages.success(request, _("Group %(name)s deleted; its contacts are kept.") % {"name": group.name})
    return redirect("addressbook:groups")


@login_required
def blacklist(request):
    form = BlacklistAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.blacklist_add(account=request.user, number=form.cleaned_data["number"])
        except ValidationError as exc:
            form.add_error("number", exc.messages)
        else:
            messages.success(request, _("%(number)s is blacklisted.") % {"number": entry.number})
            return redirect("addressbook:blacklist")
    query = request.GET.get("q", "").strip()[:40]
    page = selectors.blacklist_page(
        account=request.user, query=query, after=_int(request.GET.get("after")), before=_int(request.GET.get("before"))
    )
    return render(request, "addressbook/blacklist_list.html", {"page": page, "form": form, "query": query})


@login_required
@require_POST
def blacklist_remove(request, pk: int):
    entry = selectors.blacklist_entry_get(account=request.user, entry_id=pk)
    services.blacklist_remove(account=request.user, entry_ids=[entry.pk])
    messages.success(request, _("%(number)s can receive SMS again.") % {"number": entry.number})
    return redirect("addressbook:blacklist")


@login_required
def duplicates(request):
    numbers = selectors.duplicate_numbers(account=request.user)
    contacts = selectors.contacts_with_numbers(account=request.user, numbers=[d["mobile"] for d in numbers])
    by_number: dict[str, list] = {}
    for contact in contacts:
        by_number.setdefault(contact.mobile, []).append(contact)
    return render(request, "addressbook/duplicate_list.html", {"duplicates": list(by_number.items())})


@login_required
@require_POST
def duplicates_merge(request):
    try:
        contact = services.duplicates_merge(account=request.user, mobile=request.POST.get("mobile", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Duplicates of %(number)s merged.") % {"number": contact.mobile})
    return redirect("addressbook:duplicates")


EXPORT_HEADER = ["Nom", "Prénom", "Mobile", "Email", "Société", "Pays"]


@login_required
def contacts_export(request, fmt: str):
    rows = selectors.contacts_export_rows(account=request.user)
    if fmt == "xlsx":
        return xlsx_response(filename="contacts.xlsx", header=EXPORT_HEADER, rows=rows, title="Contacts")
    return csv_response(filename="contacts.csv", header=EXPORT_HEADER, rows=rows)


@login_required
def import_upload(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            imp = services.contact_import_create(account=request.user, upload=form.cleaned_data["file"])
        except ValidationError as exc:
            form.add_error("file", exc.messages)
        else:
            return redirect("addressbook:import_detail", uuid=imp.uuid)
    imports = request.user.contact_imports.all()[:10]
    return render(request, "addressbook/import_upload.html", {"form": form, "imports": imports})


@login_required
def import_detail(request, uuid):
    imp = selectors.contact_import_get(account=request.user, uuid=uuid)
    if imp.status != ContactImport.Status.PENDING:
        return render(request, "addressbook/import_detail.html", {"imp": imp})
    data = request.POST if request.method == "POST" else None
    encoding = (data or request.GET).get("encoding", "") or imp.encoding
    separator = (data or request.GET).get("separator", "") or imp.separator
    try:
        info = services.contact_import_preview(contact_import=imp, encoding=encoding, separator=separator)
    except importers.FileRejected as exc:
        info, preview_error = None, str(exc)
    else:
        preview_error = ""
    columns = max((len(r) for r in info.preview), default=1) if info else 1
    initial = {
        "separator": separator,
        "encoding": encoding,
        "has_header": imp.has_header,
        **{f"map_{k}": str(v) for k, v in imp.mapping.items()},
    }
    form = ImportOptionsForm(data, columns=columns, initial=initial)
    if data is not None and "start" in data and info and form.is_valid():
        try:
            services.contact_import_start(
                contact_import=imp,
                mapping=form.mapping(),
                has_header=form.cleaned_data["has_header"],
                consent=form.cleaned_data["consent"],
                mode=form.cleaned_data["mode"],
                group_name=form.cleaned_data["group_name"],
                encoding=encoding,
                separator=separator,
            )
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            return redirect("addressbook:import_detail", uuid=imp.uuid)
    return render(
        request,
        "addressbook/import_options.html",
        {"imp": imp, "info": info, "form": form, "preview_error": preview_error, "columns": range(columns)},
    )


@login_required
def import_progress(request, uuid):
    imp = selectors.contact_import_get(account=request.user, uuid=uuid)
    return render(request, "addressbook/_import_progress.html", {"imp": imp})


@login_required
def import_report(request, uuid):
    imp = selectors.contact_import_get(account=request.user, uuid=uuid)
    if not imp.report:
        raise Http404
    return FileResponse(imp.report.open("rb"), as_attachment=True, filename=f"rejected-rows-{imp.uuid}.csv")
