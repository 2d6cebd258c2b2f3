from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("transactions/", views.transactions, name="transactions"),
    path("buy/", views.buy, name="buy"),
    path("orders/<uuid:uuid>/", views.order_detail, name="order"),
    path("orders/<uuid:uuid>/invoice.pdf", views.invoice_download, name="invoice"),
    path("transfer/", views.transfer, name="transfer"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
