from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("transactions/", views.transactions, name="transactions"),
]
