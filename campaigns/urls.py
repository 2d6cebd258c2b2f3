from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("new/", views.new, name="new"),
    path("sent/", views.sent, name="sent"),
]
