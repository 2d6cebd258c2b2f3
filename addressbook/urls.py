from django.urls import path

from . import views

app_name = "addressbook"

urlpatterns = [
    path("", views.contact_list, name="contacts"),
]
