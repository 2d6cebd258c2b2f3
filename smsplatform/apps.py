from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "smsplatform"
    verbose_name = "Platform"
