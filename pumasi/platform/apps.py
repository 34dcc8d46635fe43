"""Django app configuration for pumasi.platform."""

from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "pumasi.platform"
    label = "platform"
    default_auto_field = "django.db.models.BigAutoField"
