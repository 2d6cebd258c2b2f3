"""Public pages (no login): packs, international rates, campaign simulator (BIL-3, BIL-4)."""

from django.urls import path

from . import views

app_name = "pricing"

urlpatterns = [
    path("rates/", views.rates, name="rates"),
    path("rates/international/", views.rates_international, name="international"),
    path("simulator/", views.simulator, name="simulator"),
]
