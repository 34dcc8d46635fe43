"""Django app configuration for pumasi.communities."""

from django.apps import AppConfig


class CommunitiesConfig(AppConfig):
    name = "pumasi.communities"
    label = "communities"
    default_auto_field = "django.db.models.BigAutoField"
