from django.urls import path

from . import views
from .urls_pipeline import urlpatterns as pipeline_urlpatterns

app_name = "campaigns"

urlpatterns = [
    path("new/", views.new, name="new"),
    path("sent/", views.sent, name="sent"),
]

urlpatterns += pipeline_urlpatterns
