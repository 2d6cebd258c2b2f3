from django.urls import path

from . import views

app_name = "addressbook"

urlpatterns = [
    path("", views.contact_list, name="contacts"),
    path("new/", views.contact_create, name="contact_create"),
    path("<int:pk>/", views.contact_edit, name="contact_edit"),
    path("<int:pk>/delete/", views.contact_delete, name="contact_delete"),
    path("bulk/", views.contacts_bulk, name="contacts_bulk"),
    path("export.csv", views.contacts_export, {"fmt": "csv"}, name="export_csv"),
    path("export.xlsx", views.contacts_export, {"fmt": "xlsx"}, name="export_xlsx"),
    path("groups/", views.group_list, name="groups"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
    path("blacklist/", views.blacklist, name="blacklist"),
    path("blacklist/<int:pk>/remove/", views.blacklist_remove, name="blacklist_remove"),
    path("duplicates/", views.duplicates, name="duplicates"),
    path("duplicates/merge/", views.duplicates_merge, name="duplicates_merge"),
    path("imports/new/", views.import_upload, name="import_upload"),
    path("imports/<uuid:uuid>/", views.import_detail, name="import_detail"),
    path("imports/<uuid:uuid>/progress/", views.import_progress, name="import_progress"),
    path("imports/<uuid:uuid>/rejected.csv", views.import_report, name="import_report"),
]
