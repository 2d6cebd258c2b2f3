"""URLs of the sending pipeline's pages (receipt reports, replies, carrier callbacks).

Included by campaigns/urls.py under the same ``campaigns`` namespace.
"""

from django.urls import path

from . import views_pipeline

urlpatterns: list = [
    path("campaigns/<uuid:uuid>/report/", views_pipeline.report, name="report"),
    path(
        "campaigns/<uuid:uuid>/report/delete-error-numbers/",
        views_pipeline.report_delete_error_numbers,
        name="report_delete_error_numbers",
    ),
    path("replies/", views_pipeline.replies, name="replies"),
    path("carrier/<slug:alias>/callback", views_pipeline.carrier_callback, name="carrier_callback"),
]
