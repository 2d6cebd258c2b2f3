from django.urls import path

from . import views
from .urls_pipeline import urlpatterns as pipeline_urlpatterns

app_name = "campaigns"

urlpatterns = [
    path("new/", views.new, name="new"),
    path("new/summary/", views.summary, name="summary"),
    path("new/picker/", views.picker, name="picker"),
    path("scheduled/", views.scheduled, name="scheduled"),
    path("sent/", views.sent, name="sent"),
    path("sent/export.<str:fmt>", views.export, name="export"),
    path("templates/", views.template_list, name="templates"),
    path("templates/new/", views.template_edit, name="template_new"),
    path("templates/<int:template_id>/edit/", views.template_edit, name="template_edit"),
    path("templates/<int:template_id>/delete/", views.template_delete, name="template_delete"),
    path("<uuid:uuid>/", views.detail, name="detail"),
    path("<uuid:uuid>/edit/", views.edit, name="edit"),
    path("<uuid:uuid>/copy/", views.copy, name="copy"),
    path("<uuid:uuid>/delete/", views.delete, name="delete"),
    path("<uuid:uuid>/hide/", views.hide, name="hide"),
]

urlpatterns += pipeline_urlpatterns
