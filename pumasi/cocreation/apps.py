"""Django app configuration for pumasi.cocreation."""

from django.apps import AppConfig


class CocreationConfig(AppConfig):
    name = "pumasi.cocreation"
    label = "cocreation"
    default_auto_field = "django.db.models.BigAutoField"
