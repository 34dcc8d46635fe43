"""Django app configuration for pumasi.sharing."""

from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "pumasi.sharing"
    label = "sharing"
    default_auto_field = "django.db.models.BigAutoField"
